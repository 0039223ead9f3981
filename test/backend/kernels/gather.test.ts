import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { expectSameResults, on, randomTensor } from './compare.ts';

describe('GatherV2 on wasm', () => {
  it.each([
    ['embedding rows', [11, 6], [[3, 0, 10], [3, 3, 7]], 0, 0],
    ['an inner axis', [4, 9, 3], [8, 0, 2, 2], 1, 0],
    ['the last axis, one value per slice', [5, 7], [6, 1, 1], 1, 0],
    ['a flat vector, one value per slice', [12], [11, 0, 5, 5], 0, 0],
    ['with batch dimensions', [2, 5, 3], [[4, 0], [1, 1]], 1, 1],
  ])('matches the cpu backend: %s', async (_, shape, ids, axis, batchDims) => {
    const indices = () => tf.tensor(ids as number[], undefined, 'int32');
    const f = () => tf.gather(randomTensor(shape as number[], 1), indices(), axis as number, batchDims as number);
    expectSameResults(await on('wasm', f), await on('cpu', f), 0);
  });

  it('keeps int32 values, and its gradient (an embedding update) matches the cpu backend', async () => {
    const ints = () => tf.gather(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], 'int32'), tf.tensor1d([2, 0], 'int32'));
    const [wasm] = await on('wasm', ints);
    expect(wasm.values).toEqual([5, 6, 1, 2]);
    const lookup = (t: tf.Tensor) => tf.gather(t, tf.tensor1d([1, 1, 3], 'int32'));
    const grad = () => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(lookup(t), randomTensor([3, 4], 2))))(randomTensor([5, 4], 3));
    expectSameResults(await on('wasm', grad), await on('cpu', grad));
  });

  it('rejects an index outside the gathered axis', async () => {
    await on('wasm', () => tf.zeros([1]));
    expect(() => tf.gather(tf.zeros([3, 2]), tf.tensor1d([0, 3], 'int32'))).toThrow(/index 3 is not in \[0, 2\]/);
  });
});
