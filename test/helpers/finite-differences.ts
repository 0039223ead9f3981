import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { Rng } from '../../src/util/rng.ts';

/**
 * Compares the autodiff gradient of a scalar function with central differences at `samples` random
 * entries of x. float32 limits the precision, so h is large and the tolerance loose but still catches any
 * wrong or missing term.
 */
export function expectGradientMatchesFiniteDifferences(
  f: (x: tf.Tensor) => tf.Scalar,
  x: tf.Tensor,
  { samples = 6, h = 1e-2, seed = 0, atol = 2e-3, rtol = 3e-2 } = {},
): void {
  const analytic = tf.tidy(() => tf.grad(f)(x)).dataSync();
  const base = (x.dataSync() as Float32Array).slice();
  const rng = new Rng(seed);
  const at = (values: Float32Array) => tf.tidy(() => f(tf.tensor(values, x.shape)).dataSync()[0]);
  for (let s = 0; s < samples; s++) {
    const i = rng.int(base.length);
    const plus = base.slice();
    plus[i] += h;
    const minus = base.slice();
    minus[i] -= h;
    const numeric = (at(plus) - at(minus)) / (2 * h);
    expect(Math.abs(analytic[i] - numeric), `entry ${i}: autodiff ${analytic[i]} vs numeric ${numeric}`).toBeLessThanOrEqual(
      atol + rtol * Math.abs(numeric),
    );
  }
}
