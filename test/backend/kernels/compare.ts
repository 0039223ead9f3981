import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { initBackend } from '../../../src/backend/index.ts';
import { Rng } from '../../../src/util/rng.ts';

export interface Result {
  shape: number[];
  values: number[];
}

/** Runs `f` on a backend and reads its results back, so one computation can run on wasm and on cpu. */
export async function on(backend: 'wasm' | 'cpu', f: () => tf.Tensor | tf.Tensor[]): Promise<Result[]> {
  await initBackend(backend, { threads: 1 });
  const before = tf.memory().numTensors;
  const outputs = tf.tidy(f);
  const tensors = Array.isArray(outputs) ? outputs : [outputs];
  const results = await Promise.all(tensors.map(async (t) => ({ shape: t.shape, values: Array.from(await t.data()) })));
  tf.dispose(tensors);
  expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
  return results;
}

/**
 * The same results, shape for shape, each value within `tolerance` * max(1, |expected|): float32 sums
 * of hundreds of terms differ in their last bits when added in another order.
 */
export function expectSameResults(actual: Result[], expected: Result[], tolerance = 1e-5): void {
  expect(actual.map((r) => r.shape)).toEqual(expected.map((r) => r.shape));
  actual.forEach((result, i) => {
    const worst = result.values.reduce((max, value, j) => {
      const reference = expected[i].values[j];
      return Math.max(max, Math.abs(value - reference) / Math.max(1, Math.abs(reference)));
    }, 0);
    expect(worst, `output ${i} [${result.shape}]`).toBeLessThanOrEqual(tolerance);
  });
}

/** Seeded standard-normal values in a tensor of `shape`. */
export function randomTensor(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed);
  return tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);
}
