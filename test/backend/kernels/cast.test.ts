import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/backend/index.ts';
import { on } from './compare.ts';

describe('Cast on wasm', () => {
  it('shares the data when the dtype stays the same', async () => {
    await initBackend('wasm', { threads: 1 });
    const x = tf.tensor1d([1.5, -2]);
    const buffers = tf.memory().numDataBuffers;
    const y = tf.cast(x, 'float32');
    expect(tf.memory().numDataBuffers).toBe(buffers);
    x.dispose();
    expect(Array.from(await y.data())).toEqual([1.5, -2]);
    y.dispose();
  });

  it('converts between dtypes as the cpu backend does for values it represents exactly', async () => {
    const f = () => [tf.cast(tf.tensor1d([3, -7, 0]), 'int32'), tf.cast(tf.tensor1d([4, -1], 'int32'), 'float32')];
    expect(await on('wasm', f)).toEqual(await on('cpu', f));
  });
});
