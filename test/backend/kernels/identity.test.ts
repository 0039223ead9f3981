import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/backend/index.ts';

describe('Identity on wasm', () => {
  it('shares the data of its input, and the data lives until the last tensor using it is disposed', async () => {
    await initBackend('wasm', { threads: 1 });
    const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
    const buffersBefore = tf.memory().numDataBuffers;
    const y = tf.clone(x);
    expect(tf.memory().numDataBuffers).toBe(buffersBefore);
    x.dispose();
    expect(Array.from(await y.data())).toEqual([1, 2, 3, 4]);
    y.dispose();
    expect(tf.memory().numDataBuffers).toBe(buffersBefore - 1);
  });

  it('leaves a variable saved for the backward pass unchanged by later assignments', async () => {
    await initBackend('wasm', { threads: 1 });
    const v = tf.variable(tf.tensor1d([1, 2, 3]));
    const { value, grads } = tf.variableGrads(() => {
      const loss = tf.sum(tf.square(v)) as tf.Scalar;
      v.assign(tf.tensor1d([10, 20, 30])); // the tape saved v's old data through Identity
      return loss;
    }, [v]);
    expect(Array.from(await value.data())).toEqual([14]);
    expect(Array.from(await grads[v.name].data())).toEqual([2, 4, 6]);
    tf.dispose([value, grads[v.name], v]);
  });
});
