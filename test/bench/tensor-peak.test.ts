import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { measureTensorPeak } from '../../src/bench/tensor-peak.ts';

await initBackend('wasm');

describe('measureTensorPeak', () => {
  it('counts a shared buffer once on the heap and once per handle in tfjs, above what was held before', async () => {
    const before = tf.fill([5000], 3); // held already: counted by neither
    const peak = await measureTensorPeak(() => {
      const a = tf.fill([1000], 1); // 4,000 bytes
      const b = tf.add(before, before); // 20,000 bytes
      const view = tf.reshape(b, [50, 100]); // shares b's buffer
      a.dispose();
      const c = tf.add(view, view); // 20,000 bytes, after a's 4,000 went back
      tf.dispose([b, view, c]);
    });
    before.dispose();
    expect(peak.heapBytes).toBe(40_000);
    expect(peak.countedBytes).toBe(60_000);
  });

  it('counts every allocation when the allocator binds itself lazily, as Emscripten exports do', async () => {
    const wasm = heapModule();
    const bound = wasm._malloc;
    wasm._malloc = (bytes) => {
      wasm._malloc = bound;
      return bound.call(wasm, bytes);
    };
    const peak = await measureTensorPeak(() => tf.dispose([tf.fill([100], 1), tf.fill([200], 1)]));
    expect(peak.heapBytes).toBe(1200);
  });

  it('leaves the allocator as it found it', async () => {
    const wasm = heapModule();
    const { _malloc, _free } = wasm;
    await measureTensorPeak(() => tf.tidy(() => void tf.ones([10]).add(1)));
    expect(wasm._malloc).toBe(_malloc);
    expect(wasm._free).toBe(_free);
  });
});

function heapModule(): { _malloc: (bytes: number) => number; _free: (pointer: number) => void } {
  return (tf.backend() as unknown as { wasm: ReturnType<typeof heapModule> }).wasm;
}
