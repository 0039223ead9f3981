import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';

await initBackend('cpu');
await initBackend('wasm');

/** Runs f on the cpu backend and on wasm (with the project's Slice/Unpack kernels) and returns both. */
function onBoth<T>(f: () => T): { cpu: T; wasm: T } {
  tf.setBackend('cpu');
  const cpu = f();
  tf.setBackend('wasm');
  const wasm = f();
  return { cpu, wasm };
}

const shapeAndSlice = fc
  .array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 5 })
  .chain((shape) =>
    fc.tuple(
      fc.constant(shape),
      fc.tuple(...shape.map((d) => fc.integer({ min: 0, max: d - 1 }))).chain((begin) =>
        fc.tuple(fc.constant(begin), fc.tuple(...begin.map((b, i) => fc.integer({ min: 0, max: shape[i] - b })))),
      ),
    ),
  );

describe('wasm Slice and Unpack kernels', () => {
  it('slice equals the cpu backend for any shape up to rank 5 and any begin/size', () => {
    fc.assert(
      fc.property(shapeAndSlice, ([shape, [begin, size]]) => {
        const values = Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i * 0.5 - 3);
        const { cpu, wasm } = onBoth(() => tf.tidy(() => tf.slice(tf.tensor(values, shape), begin, size).arraySync()));
        expect(wasm).toEqual(cpu);
      }),
      { seed: 11, numRuns: 300 },
    );
  });

  it('unstack equals the cpu backend along every axis, for float32 and int32', () => {
    for (const dtype of ['float32', 'int32'] as const) {
      for (const axis of [0, 1, 2, -1]) {
        const { cpu, wasm } = onBoth(() =>
          tf.tidy(() => tf.unstack(tf.range(0, 2 * 3 * 4, 1, dtype).reshape([2, 3, 4]), axis).map((t) => t.arraySync())),
        );
        expect(wasm).toEqual(cpu);
      }
    }
  });

  it('leaves no tensors behind', () => {
    tf.setBackend('wasm');
    const x = tf.ones([4, 8, 8]);
    const before = tf.memory().numTensors;
    tf.tidy(() => void tf.unstack(x).map((t) => tf.slice(t, [1, 2], [3, 4])));
    expect(tf.memory().numTensors).toBe(before);
  });
});
