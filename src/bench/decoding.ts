import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Token } from 'node-llama-cpp';
import { loadOptionalPackage } from '../backend/optional-package.ts';
import { exportGguf } from '../formats/gguf-model.ts';
import { CausalLM } from '../model/causal-lm.ts';
import { createByteLevelTokenizer } from '../tokenizer/byte-level.ts';
import { countParameters, type ModelConfig } from '../model/config.ts';
import { generateTokens } from '../model/generate.ts';
import { PeakMemory } from './memory.ts';

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

export interface LlamaCppDecodingResult {
  threads: number;
  newTokens: number;
  tokensPerSecond: number;
}

/**
 * The peer of `benchDecoding`: real llama.cpp (node-llama-cpp, a development dependency) decoding the same
 * model from an F32 GGUF export with an F32 KV cache, greedily, on `threads` threads; null when
 * node-llama-cpp is not installed.
 */
export async function benchLlamaCppDecoding(config: ModelConfig, promptTokens: number, newTokens: number, threads: number): Promise<LlamaCppDecodingResult | null> {
  const loaded = await loadOptionalPackage('node-llama-cpp');
  if (loaded.status !== 'loaded') return null;
  const { getLlama, LlamaLogLevel } = loaded.module as typeof import('node-llama-cpp');
  const dir = await mkdtemp(join(tmpdir(), 'slm-bench-decode-'));
  const model = CausalLM.init(config, { seed: 0 });
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  try {
    const path = join(dir, 'model.gguf');
    await exportGguf(model, { json: createByteLevelTokenizer().toJSON() }, path, { type: 'F32' });
    const cppModel = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    const context = await cppModel.createContext({
      contextSize: promptTokens + newTokens + 8,
      threads,
      flashAttention: false,
      experimentalKvCacheKeyType: 'F32',
      experimentalKvCacheValueType: 'F32',
    });
    const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919) % config.vocabSize) as Token[];
    let produced = 0;
    let firstTokenAt = 0;
    for await (const _ of context.getSequence().evaluate(prompt, { temperature: 0 })) {
      if (produced === 0) firstTokenAt = performance.now();
      if (++produced >= newTokens) break;
    }
    const seconds = (performance.now() - firstTokenAt) / 1000;
    await context.dispose();
    await cppModel.dispose();
    return { threads, newTokens: produced, tokensPerSecond: (produced - 1) / seconds };
  } finally {
    model.dispose();
    await llama.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}
