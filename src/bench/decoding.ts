import type { Token } from 'node-llama-cpp';
import { openLlamaCpp } from '../eval/llama-cpp-engine.ts';
import { CausalLM } from '../model/causal-lm.ts';
import { createByteLevelTokenizer } from '../tokenizer/byte-level.ts';
import { countParameters, type ModelConfig } from '../model/config.ts';
import { generateTokens } from '../model/generate.ts';
import type { ThreadSource } from '../backend/thread-choice.ts';
import { PeakMemory } from './memory.ts';
import { runBenchWorker } from './worker-process.ts';

export interface DecodingBenchResult {
  parameters: number;
  promptTokens: number;
  newTokens: number;
  tokensPerSecond: number;
  prefillSeconds: number;
  peakRssMiB: number;
  peakTensorMiB: number;
}

/** Greedy decoding of one sequence with the KV cache: prefill the prompt, then one token per step (after an untimed warm-up). */
export async function benchDecoding(config: ModelConfig, promptTokens: number, newTokens: number): Promise<DecodingBenchResult> {
  const model = CausalLM.init(config, { seed: 0 });
  const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919) % config.vocabSize);
  const options = { maxTokens: newTokens, seed: 0, temperature: 0, topK: 0, topP: 1, stopIds: [] };
  // Untimed warm-up: the first steps compile kernels and grow buffers.
  for await (const _ of generateTokens(model, prompt, { ...options, maxTokens: 8 })) continue;
  const memory = new PeakMemory();
  const started = performance.now();
  let firstTokenAt = 0;
  let produced = 0;
  for await (const _ of generateTokens(model, prompt, options)) {
    if (produced === 0) firstTokenAt = performance.now();
    produced++;
    memory.sample();
  }
  const decodeSeconds = (performance.now() - firstTokenAt) / 1000;
  model.dispose();
  return {
    parameters: countParameters(config),
    promptTokens,
    newTokens: produced,
    tokensPerSecond: (produced - 1) / decodeSeconds,
    prefillSeconds: (firstTokenAt - started) / 1000,
    ...memory.peaks(),
  };
}

export type LlamaCppDecodingResult = { threads: number; newTokens: number; tokensPerSecond: number } | { skipped: string };

/**
 * The peer of `benchDecoding`: real llama.cpp (node-llama-cpp, a development dependency) decoding the same
 * model from its F32 GGUF export with an F32 KV cache, greedily, on `threads` threads; or why it did not.
 */
export async function benchLlamaCppDecoding(config: ModelConfig, promptTokens: number, newTokens: number, threads: number): Promise<LlamaCppDecodingResult> {
  const model = CausalLM.init(config, { seed: 0 });
  try {
    const source = { model, tokenizer: createByteLevelTokenizer(), tensors: () => model.eachHfTensor() };
    const opened = await openLlamaCpp(source, { threads, contextSize: promptTokens + newTokens + 8 });
    if ('unavailable' in opened) return { skipped: opened.unavailable };
    try {
      const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919) % config.vocabSize) as Token[];
      let produced = 0;
      let firstTokenAt = 0;
      for await (const _ of opened.context.getSequence().evaluate(prompt, { temperature: 0 })) {
        if (produced === 0) firstTokenAt = performance.now();
        if (++produced >= newTokens) break;
      }
      return { threads, newTokens: produced, tokensPerSecond: (produced - 1) / ((performance.now() - firstTokenAt) / 1000) };
    } finally {
      await opened.close();
    }
  } finally {
    model.dispose();
  }
}

export interface DecodingPhaseResult extends DecodingBenchResult {
  /** The wasm threads both engines decoded with: the count chosen for decoding, and where it came from. */
  threads: number;
  threadSource: ThreadSource | 'caller';
  llamaCpp: LlamaCppDecodingResult;
  ratioToLlamaCpp: number | null;
}

/** benchDecoding and its llama.cpp peer in a process started with the decoding thread count (decoding-worker.ts). */
export function benchDecodingPhase(promptTokens: number, newTokens: number): Promise<DecodingPhaseResult> {
  return runBenchWorker(new URL('./decoding-worker.ts', import.meta.url), { promptTokens, newTokens }, 'the decoding process');
}
