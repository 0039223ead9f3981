import type { Token } from 'node-llama-cpp';
import { openLlamaCpp } from '../eval/llama-cpp-engine.ts';
import { CausalLM } from '../model/causal-lm.ts';
import { createByteLevelTokenizer } from '../tokenizer/byte-level.ts';
import { countParameters, type ModelConfig } from '../model/config.ts';
import { generateTokens } from '../model/generate.ts';
import type { ThreadSource } from '../backend/thread-choice.ts';
import { PeakMemory } from './memory.ts';
import { medianBy, timeDecoding } from './timing.ts';
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

/** Rounds each engine decodes for the figure, interleaved with its peer's: the median is reported. */
const DECODING_ROUNDS = 3;

/**
 * Untimed rounds first, for both engines alike: V8 compiles the decoding kernels' loops to optimized
 * machine code only after some thousands of calls (measured: the first 64-token round ran at 0.8x the
 * tenth), and a long evaluation runs at the steady pace.
 */
const WARMUP_ROUNDS = 3;

/**
 * Greedy decoding of one sequence with the KV cache: prefill the prompt, then one token per step, after
 * WARMUP_ROUNDS untimed rounds; `round` runs one more and returns it.
 */
async function openDecodingBench(config: ModelConfig, promptTokens: number, newTokens: number) {
  const model = CausalLM.init(config, { seed: 0 });
  const prompt = benchPrompt(config, promptTokens);
  const options = { maxTokens: newTokens, seed: 0, temperature: 0, topK: 0, topP: 1, stopIds: [] };
  const memory = new PeakMemory();
  const round = async (): Promise<{ tokensPerSecond: number; prefillSeconds: number; produced: number }> => {
    const started = performance.now();
    const { produced, firstTokenAt, tokensPerSecond } = await timeDecoding(generateTokens(model, prompt, options), Infinity, () => memory.sample());
    return { tokensPerSecond, prefillSeconds: (firstTokenAt - started) / 1000, produced };
  };
  for (let i = 0; i < WARMUP_ROUNDS; i++) await round();
  return {
    round,
    result: (rounds: Awaited<ReturnType<typeof round>>[]): DecodingBenchResult => {
      const middle = medianBy(rounds, (r) => r.tokensPerSecond);
      return { parameters: countParameters(config), promptTokens, newTokens: middle.produced, tokensPerSecond: middle.tokensPerSecond, prefillSeconds: middle.prefillSeconds, ...memory.peaks() };
    },
    dispose: () => model.dispose(),
  };
}

/** `openDecodingBench`'s median of DECODING_ROUNDS rounds, alone. */
export async function benchDecoding(config: ModelConfig, promptTokens: number, newTokens: number): Promise<DecodingBenchResult> {
  const bench = await openDecodingBench(config, promptTokens, newTokens);
  try {
    const rounds = [];
    for (let i = 0; i < DECODING_ROUNDS; i++) rounds.push(await bench.round());
    return bench.result(rounds);
  } finally {
    bench.dispose();
  }
}

export type LlamaCppDecodingResult = { threads: number; newTokens: number; tokensPerSecond: number } | { skipped: string };

/**
 * The peer of `openDecodingBench`: real llama.cpp (node-llama-cpp, a development dependency) decoding the
 * same model from its F32 GGUF export with an F32 KV cache, greedily, on `threads` threads, after a
 * warm-up of its own; or why it cannot.
 */
type LlamaCppDecodingBench = { round(): Promise<number>; close(): Promise<void> } | { skipped: string };

async function openLlamaCppDecodingBench(config: ModelConfig, promptTokens: number, newTokens: number, threads: number): Promise<LlamaCppDecodingBench> {
  const model = CausalLM.init(config, { seed: 0 });
  try {
    const source = { model, tokenizer: createByteLevelTokenizer(), tensors: () => model.eachHfTensor() };
    const opened = await openLlamaCpp(source, { threads, contextSize: promptTokens + newTokens + 8 });
    if ('unavailable' in opened) return { skipped: opened.unavailable };
    const sequence = opened.context.getSequence();
    const round = async (): Promise<number> => {
      await sequence.clearHistory();
      return (await timeDecoding(sequence.evaluate(benchPrompt(config, promptTokens) as Token[], { temperature: 0 }), newTokens)).tokensPerSecond;
    };
    for (let i = 0; i < WARMUP_ROUNDS; i++) await round();
    return { round, close: () => opened.close() };
  } finally {
    model.dispose();
  }
}

/** The same prompt for both engines: ids spread over the vocabulary. */
function benchPrompt(config: ModelConfig, promptTokens: number): number[] {
  return Array.from({ length: promptTokens }, (_, i) => (i * 7919) % config.vocabSize);
}

/**
 * Both engines' decoding, their rounds interleaved so that both see the same load on a shared machine:
 * the median of DECODING_ROUNDS rounds each.
 */
export async function benchDecodingAgainstLlamaCpp(config: ModelConfig, promptTokens: number, newTokens: number, threads: number) {
  const ours = await openDecodingBench(config, promptTokens, newTokens);
  const peer = await openLlamaCppDecodingBench(config, promptTokens, newTokens, threads);
  try {
    const [oursRounds, peerRounds] = [[] as Awaited<ReturnType<typeof ours.round>>[], [] as number[]];
    for (let i = 0; i < DECODING_ROUNDS; i++) {
      oursRounds.push(await ours.round());
      if (!('skipped' in peer)) peerRounds.push(await peer.round());
    }
    const llamaCpp: LlamaCppDecodingResult = 'skipped' in peer ? { skipped: peer.skipped } : { threads, newTokens, tokensPerSecond: medianBy(peerRounds, (r) => r) };
    return { ours: ours.result(oursRounds), llamaCpp };
  } finally {
    ours.dispose();
    if (!('skipped' in peer)) await peer.close();
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
