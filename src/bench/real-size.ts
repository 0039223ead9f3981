/**
 * A real-size model on the live backend, in two processes of their own (real-size-worker.ts) so that each
 * peak RSS is its own: scoring as `slm-train score` holds the model, and a LoRA run as the train stage
 * holds it (the memory plan, loading, LoRA steps, all-linear with AdamW, at batch 1 x seqLen) with the
 * measured peaks beside the planned ones.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backendCapacity, backendMemoryInUse, hostCapacity } from '../backend/capacity.ts';
import { inspectModel, loadModel, resolveResidency } from '../model-files/load.ts';
import { LoraAdapter } from '../model/lora.ts';
import { resolveLoraConfig } from '../model/lora-config.ts';
import { planTrainingMemory } from '../model/memory-plan.ts';
import { generateTokens } from '../model/generate.ts';
import { GREEDY } from '../model/sampling.ts';
import { scoreTokens } from '../model/score.ts';
import { Rng } from '../util/rng.ts';
import { timeDecoding } from './timing.ts';
import { nextTokenLoss } from '../../trainers/losses/next-token.ts';
import { AdamW } from '../../trainers/optimizer/adamw.ts';
import { measureTensorPeak } from './tensor-peak.ts';

export interface RealSizeOptions {
  model: string;
  seqLen: number;
  /** Timed LoRA steps, after one untimed. */
  steps: number;
  rank: number;
  weights: 'auto' | 'resident' | 'streamed';
}

export interface ScoringResult {
  loadSeconds: number;
  tokensPerSecond: number;
  /** Greedy decoding after the scored sequence as a prompt, as `eval` and `generate` decode. */
  decoding: { newTokens: number; tokensPerSecond: number };
  peakRssBytes: number;
}

/** Tokens decoded after the scoring pass, the first of them (prefill) untimed. */
const DECODED_TOKENS = 17;

/** One causal scoring pass of seqLen tokens after loading as the score command does, then greedy decoding. */
export async function benchScoring(options: RealSizeOptions): Promise<ScoringResult> {
  const started = performance.now();
  const { model } = await loadModel(options.model, { weights: options.weights });
  const loadSeconds = (performance.now() - started) / 1000;
  const ids = benchIds(model.config.vocabSize, options.seqLen);
  const scoring = performance.now();
  await scoreTokens(model, ids);
  const tokensPerSecond = options.seqLen / ((performance.now() - scoring) / 1000);
  const { produced, tokensPerSecond: decodingRate } = await timeDecoding(generateTokens(model, ids, { ...GREEDY, maxTokens: DECODED_TOKENS, seed: 0, stopIds: [] }));
  const decoding = { newTokens: produced - 1, tokensPerSecond: decodingRate };
  model.dispose();
  return { loadSeconds, tokensPerSecond, decoding, peakRssBytes: process.resourceUsage().maxRSS * 1024 };
}

export interface RealSizeResult {
  parameters: number;
  storedBytes: number;
  residency: 'resident' | 'streamed';
  recompute: boolean;
  pinBytes: number;
  loadSeconds: number;
  lora: { rank: number; trainable: number; seqLen: number; steps: number; secondsPerStep: number; tokensPerSecond: number };
  planned: { backendPeakBytes: number; hostPeakBytes: number };
  measured: {
    /** Process peak resident memory (getrusage). */
    peakRssBytes: number;
    /** The most bytes of distinct backend buffers live at once during a LoRA step, held weights included. */
    peakBackendBytes: number;
    /** wasm: the heap's size at the end (it never shrinks); null elsewhere. */
    heapBytes: number | null;
  };
}

/** LoRA steps after loading as the train stage does, with the plan's peaks against the measured ones. */
export async function benchLoraSteps(options: RealSizeOptions): Promise<RealSizeResult> {
  const { config, storedBytes } = await inspectModel(options.model);
  const capacity = backendCapacity();
  const lora = resolveLoraConfig({ rank: options.rank, alpha: 2 * options.rank, targets: 'all-linear' });
  const memory = planTrainingMemory({
    config,
    storedBytes,
    residency: resolveResidency(config, options.weights, capacity),
    batchSize: 1,
    seqLen: options.seqLen,
    lora,
    fullLogits: false,
    recompute: 'auto',
    capacity,
    hostBytes: hostCapacity(),
  });
  let started = performance.now();
  const { model } = await loadModel(options.model, { weights: memory.residency, pinBytes: memory.pinBytes, pinAs: 'float32' });
  const loadSeconds = (performance.now() - started) / 1000;
  for (const p of model.params.values()) p.trainable = false;
  model.recompute = memory.recompute;
  const ids = benchIds(config.vocabSize, options.seqLen);
  const adapter = LoraAdapter.init(model, lora, 0);
  adapter.training = true;
  const project = adapter.wrap(model);
  const optimizer = new AdamW(adapter.params, { lr: 1e-4, betas: [0.9, 0.95], weightDecay: 0 });
  const batch = {
    inputs: Int32Array.from(ids),
    targets: Int32Array.from([...ids.slice(1), ids[0]]),
    mask: new Float32Array(options.seqLen).fill(1),
    batchSize: 1,
    seqLen: options.seqLen,
    tokens: options.seqLen,
  };
  const step = () => {
    const { value, grads } = tf.variableGrads(() => nextTokenLoss(model, batch, project), [...adapter.params.values()]);
    const named = new Map([...adapter.params].map(([name, v]) => [name, grads[v.name]]));
    optimizer.step(named);
    tf.dispose([value, ...named.values()]);
  };
  const held = tf.memory().numBytes;
  const peak = await measureTensorPeak(step); // the untimed first step
  started = performance.now();
  for (let i = 0; i < options.steps; i++) step();
  const secondsPerStep = (performance.now() - started) / 1000 / options.steps;
  const result: RealSizeResult = {
    parameters: model.parameterCount(),
    storedBytes,
    residency: memory.residency,
    recompute: memory.recompute,
    pinBytes: memory.pinBytes,
    loadSeconds,
    lora: { rank: lora.rank, trainable: adapter.parameterCount(), seqLen: options.seqLen, steps: options.steps, secondsPerStep, tokensPerSecond: options.seqLen / secondsPerStep },
    planned: { backendPeakBytes: memory.plan.backendPeak, hostPeakBytes: memory.plan.hostPeak },
    measured: {
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      peakBackendBytes: held + (peak.heapBytes ?? peak.countedBytes),
      heapBytes: backendMemoryInUse().heapBytes,
    },
  };
  optimizer.dispose();
  adapter.dispose();
  model.dispose();
  return result;
}

/** Seeded token ids below 32,000 (every shape's vocabulary has them). */
function benchIds(vocabSize: number, length: number): number[] {
  const rng = new Rng(3);
  return Array.from({ length }, () => rng.int(Math.min(vocabSize, 32_000)));
}
