/**
 * Running the wasm backend out of its 32-bit heap gives one error that names the kernel, its inputs and
 * the heap in use, not the module's abort text.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { BackendMemoryError } from '../../src/backend/wasm-faults.ts';
import { formatCliError } from '../../src/cli/errors.ts';

await initBackend('wasm');

describe('a wasm heap that runs out', () => {
  it('fails with a BackendMemoryError naming the kernel and the heap, and corrupts nothing', () => {
    const held: tf.Tensor[] = [];
    let failure: unknown = null;
    // 256 MiB at a time: the 4 GiB heap runs out within 16. tfjs alone would put the 16th at address 0.
    for (let i = 0; i < 20 && failure === null; i++) {
      try {
        held.push(tf.fill([64 * 2 ** 20], i + 1));
      } catch (error) {
        failure = error;
      }
    }
    expect(failure).toBeInstanceOf(BackendMemoryError);
    expect(held.length).toBeGreaterThan(10);
    held.forEach((t, i) => expect(t.dataSync()[0]).toBe(i + 1));
    const line = formatCliError(failure, { verbose: false });
    expect(line).toMatch(/^slm-train: error: the wasm backend failed in Fill on no inputs with [\d.]+ GiB of its 4\.0 GiB heap grown \([\d.]+ GiB in tensors\): out of memory: the wasm heap has no room for 256\.0 MiB; .*slm-train plan/);
    expect(line.split('\n')).toHaveLength(1);
    expect(line.length).toBeLessThan(400);
  });
});
