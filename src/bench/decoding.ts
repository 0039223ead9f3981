import { CausalLM } from '../model/causal-lm.ts';
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

/** Greedy decoding of one sequence with the KV cache: prefill the prompt, then one token per step. */
export async function benchDecoding(config: ModelConfig, promptTokens: number, newTokens: number): Promise<DecodingBenchResult> {
  const model = CausalLM.init(config, { seed: 0 });
  const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919) % config.vocabSize);
  const options = { maxTokens: newTokens, seed: 0, temperature: 0, topK: 0, topP: 1, stopIds: [] };
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
