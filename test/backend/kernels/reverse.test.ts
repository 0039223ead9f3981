import * as tf from '@tensorflow/tfjs-core';
import { describe, it } from 'vitest';
import { expectSameResults, on, randomTensor } from './compare.ts';

describe('Reverse on wasm', () => {
  it.each([
    ['the halves of each head ([B, T, H, 2, hd/2], axis 3)', [2, 3, 4, 2, 5], [3]],
    ['the last axis', [3, 7], [1]],
    ['two neighbouring axes', [4, 5, 6], [0, 1]],
    ['two separate axes', [4, 5, 6], [0, 2]],
    ['every axis', [3, 4, 5], [0, 1, 2]],
    ['an axis of size 1 only', [3, 1, 4], [1]],
  ])('matches the cpu backend: %s', async (_, shape, axes) => {
    const f = () => tf.reverse(randomTensor(shape as number[], 1), axes as number[]);
    expectSameResults(await on('wasm', f), await on('cpu', f), 0);
  });

  it('has a gradient that matches the cpu backend', async () => {
    const loss = (x: tf.Tensor) => tf.sum(tf.mul(tf.reverse(x, [1]), randomTensor([3, 4, 2], 2)));
    const f = () => tf.grad(loss)(randomTensor([3, 4, 2], 3));
    expectSameResults(await on('wasm', f), await on('cpu', f), 0);
  });
});
