import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { Rng } from '../../src/util/rng.ts';

/**
 * Compares the autodiff gradient of a scalar function with central differences at `samples` random
 * entries of x. float32 limits the precision, so h is large and the tolerance loose but still catches any
 * wrong or missing term.
 */
export async function expectGradientMatchesFiniteDifferences(
  f: (x: tf.Tensor) => tf.Scalar,
  x: tf.Tensor,
  { samples = 6, h = 1e-2, seed = 0, atol = 2e-3, rtol = 3e-2 } = {},
): Promise<void> {
  // Reads are asynchronous: the webgpu backend has no synchronous read in Node.
  const analytic = await readAndDispose(tf.tidy(() => tf.grad(f)(x)));
  const base = ((await x.data()) as Float32Array).slice();
  const rng = new Rng(seed);
  const at = async (values: Float32Array) => (await readAndDispose(tf.tidy(() => f(tf.tensor(values, x.shape)))))[0];
  for (let s = 0; s < samples; s++) {
    const i = rng.int(base.length);
    const plus = base.slice();
    plus[i] += h;
    const minus = base.slice();
    minus[i] -= h;
    const numeric = ((await at(plus)) - (await at(minus))) / (2 * h);
    expect(Math.abs(analytic[i] - numeric), `entry ${i}: autodiff ${analytic[i]} vs numeric ${numeric}`).toBeLessThanOrEqual(
      atol + rtol * Math.abs(numeric),
    );
  }
}

/** The values of a tensor the caller owns, which is disposed. */
export async function readAndDispose(t: tf.Tensor): Promise<Float32Array> {
  const values = (await t.data()) as Float32Array;
  t.dispose();
  return values;
}
