import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { defaultWasmThreads, MAX_WASM_THREADS } from '../../src/backend/wasm.ts';

describe('the wasm thread count', () => {
  it('is one per available CPU within the build limit, unless SLM_TRAIN_THREADS sets it', () => {
    expect(defaultWasmThreads({})).toBe(Math.min(availableParallelism(), MAX_WASM_THREADS));
    expect(defaultWasmThreads({ SLM_TRAIN_THREADS: '1' })).toBe(1);
    expect(defaultWasmThreads({ SLM_TRAIN_THREADS: '' })).toBe(Math.min(availableParallelism(), MAX_WASM_THREADS));
  });

  it('names the variable and the range when the value is not a thread count', () => {
    for (const bad of ['0', '2.5', 'two', '9']) {
      expect(() => defaultWasmThreads({ SLM_TRAIN_THREADS: bad })).toThrow(`SLM_TRAIN_THREADS must be a whole number of threads from 1 to 8, got "${bad}"`);
    }
  });
});
