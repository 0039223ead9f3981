import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { withWrittenGradient, type WrittenGradient } from '../../src/backend/tape.ts';

await initBackend('wasm');

/** x^3 with its gradient written out; counts how often the gradient function ran. */
function cube(calls: { grad: number }): WrittenGradient {
  return (...args) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const square = tf.mul(x, x);
    save([square]);
    return {
      value: tf.mul(square, x),
      gradFunc: (dy, [s]) => {
        calls.grad++;
        return tf.mul(dy, tf.mul(s, 3));
      },
    };
  };
}

describe('withWrittenGradient', () => {
  it('uses the written gradient while a gradient is recorded', () => {
    const calls = { grad: 0 };
    const x = tf.tensor1d([1, -2, 0.5]);
    const grad = tf.grad((t: tf.Tensor) => tf.sum(withWrittenGradient(cube(calls), [t])))(x);
    expect(Array.from(grad.dataSync())).toEqual([3, 12, 0.75]);
    expect(calls.grad).toBe(1);
  });

  it('runs the forward ops alone otherwise: the same value, nothing left behind', () => {
    const calls = { grad: 0 };
    const x = tf.tensor1d([1, -2, 0.5]);
    const before = tf.memory().numTensors;
    const y = withWrittenGradient(cube(calls), [x]);
    expect(Array.from(y.dataSync())).toEqual([1, -8, 0.125]);
    expect(tf.memory().numTensors).toBe(before + 1); // y alone: the saved square is freed
    expect(calls.grad).toBe(0);
  });
});
