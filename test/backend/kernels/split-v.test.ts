import * as tf from '@tensorflow/tfjs-core';
import { describe, it } from 'vitest';
import { expectSameResults, on, randomTensor } from './compare.ts';

// Slice and Unpack, which share SplitV's copying, are checked in test/backend/slice.test.ts.
describe('SplitV on wasm', () => {
  it('matches the cpu backend along the last axis and along an inner axis', async () => {
    const pieces = () => [...tf.split(randomTensor([3, 4, 10], 2), [5, 2, 3], 2), ...tf.split(randomTensor([2, 6, 3], 3), 3, 1)];
    expectSameResults(await on('wasm', pieces), await on('cpu', pieces), 0);
  });

  it('has a gradient (a concatenation) that matches the cpu backend', async () => {
    const grad = () =>
      tf.grad((x: tf.Tensor) => {
        const [a, b] = tf.split(x, [4, 6], -1);
        return tf.add(tf.sum(tf.mul(a, a)), tf.sum(tf.mul(b, randomTensor([2, 6], 4))));
      })(randomTensor([2, 10], 5));
    expectSameResults(await on('wasm', grad), await on('cpu', grad));
  });
});
