import { describe, expect, it } from 'vitest';
import { chooseWasmThreads } from '../../src/backend/thread-choice.ts';
import { benchDecodingPhase } from '../../src/bench/decoding.ts';

describe('benchDecodingPhase', () => {
  it('decodes on the threads chosen for decoding, beside llama.cpp on the same count, and gives their ratio', async () => {
    const result = await benchDecodingPhase(4, 6);
    const chosen = chooseWasmThreads('decoding');
    expect({ threads: result.threads, threadSource: result.threadSource }).toEqual({ threads: chosen.threads, threadSource: chosen.source });
    expect(result.newTokens).toBe(6);
    expect(result.tokensPerSecond).toBeGreaterThan(0);
    // node-llama-cpp is a development dependency, so it is here: its figure is measured, not skipped.
    if ('skipped' in result.llamaCpp) throw new Error(`llama.cpp skipped: ${result.llamaCpp.skipped}`);
    expect(result.llamaCpp.threads).toBe(result.threads);
    expect(result.ratioToLlamaCpp).toBeCloseTo(result.tokensPerSecond / result.llamaCpp.tokensPerSecond, 9);
  }, 120_000);
});
