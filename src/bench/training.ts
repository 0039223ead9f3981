import * as tf from '@tensorflow/tfjs-core';
import { CausalLM } from '../model/causal-lm.ts';
import { countParameters, resolveModelConfig, type ModelConfig } from '../model/config.ts';
import { LoraAdapter } from '../model/lora.ts';
import { elementCount } from '../model/variables.ts';
import { resolveLoraConfig, type LoraConfig } from '../model/lora-config.ts';
import { Rng } from '../util/rng.ts';
import { nextTokenLoss } from '../../trainers/losses/next-token.ts';
import type { Batch } from '../../trainers/batches.ts';
import { fit } from '../../trainers/loop.ts';
import { AdamW } from '../../trainers/optimizer/adamw.ts';
import { PeakMemory } from './memory.ts';

/** The default training case of the brief: 4 layers, hidden 256, GQA 8/4, vocabulary 4096, tied head. */
export const BENCH_MODEL: ModelConfig = resolveModelConfig({
  vocabSize: 4096,
  hiddenSize: 256,
  intermediateSize: 688,
  numLayers: 4,
  numHeads: 8,
  numKvHeads: 4,
  tieWordEmbeddings: true,
  maxPositionEmbeddings: 1024,
});

/** The LoRA case: rank 16 on the attention projections, as in most LoRA recipes. */
export const BENCH_LORA: LoraConfig = resolveLoraConfig({ rank: 16, alpha: 32, targets: ['q', 'k', 'v', 'o'] });

export interface TrainingBenchOptions {
  config: ModelConfig;
  batchSize: number;
  seqLen: number;
  warmupSteps: number;
  steps: number;
  /** Train LoRA adapters on the (frozen) model instead of every weight. */
  lora?: LoraConfig;
}

export interface TrainingBenchResult {
  parameters: number;
  trainableParameters: number;
  batchSize: number;
  seqLen: number;
  steps: number;
  tokensPerSecond: number;
  secondsPerStep: number;
  peakRssMiB: number;
  peakTensorMiB: number;
}

/** Full training steps (forward, backward, AdamW) on random tokens: the loop users run, nothing skipped. */
export async function benchTraining(options: TrainingBenchOptions): Promise<TrainingBenchResult> {
  const { config, batchSize, seqLen } = options;
  const model = CausalLM.init(config, { seed: 0 });
  const adapter = options.lora && LoraAdapter.init(model, options.lora, 0);
  if (adapter) for (const p of model.params.values()) p.trainable = false;
  const trainable = adapter ? adapter.params : model.params;
  const project = adapter ? adapter.wrap(model) : model.project;
  const optimizer = new AdamW(trainable, { lr: 1e-4, betas: [0.9, 0.95], weightDecay: 0.1 });
  const batches = { nextBatch: randomBatches(config.vocabSize, batchSize, seqLen) };
  const loss = (batch: Batch) => nextTokenLoss(model, batch, project);
  const schedule = { lr: 1e-4, minLrRatio: 0.1, warmupSteps: 0, maxSteps: 1_000_000, schedule: 'constant' as const };
  const run = (startStep: number, maxSteps: number, afterStep?: () => void) =>
    fit(trainable, optimizer, batches, loss, { startStep, maxSteps, gradAccum: 1, schedule, clipGradNorm: 1 }, { afterStep });

  await run(0, options.warmupSteps);
  const memory = new PeakMemory();
  const started = performance.now();
  await run(options.warmupSteps, options.warmupSteps + options.steps, () => memory.sample());
  const seconds = (performance.now() - started) / 1000;
  // Live tensors peak inside a step (activations and gradients), where only tf.profile sees them.
  const end = options.warmupSteps + options.steps;
  const { peakBytes } = await tf.profile(() => run(end, end + 1));
  memory.recordTensorBytes(peakBytes);
  const trainableParameters = elementCount(trainable);
  optimizer.dispose();
  adapter?.dispose();
  model.dispose();
  return {
    parameters: countParameters(config),
    trainableParameters,
    batchSize,
    seqLen,
    steps: options.steps,
    tokensPerSecond: (options.steps * batchSize * seqLen) / seconds,
    secondsPerStep: seconds / options.steps,
    ...memory.peaks(),
  };
}

function randomBatches(vocab: number, batchSize: number, seqLen: number): () => Batch {
  const rng = new Rng(1);
  return () => {
    const size = batchSize * seqLen;
    const inputs = Int32Array.from({ length: size }, () => rng.int(vocab));
    const targets = Int32Array.from({ length: size }, () => rng.int(vocab));
    return { inputs, targets, mask: new Float32Array(size).fill(1), batchSize, seqLen, tokens: size };
  };
}
