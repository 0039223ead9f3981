import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from './batches.ts';
import { SlmError } from '../src/util/errors.ts';
import { readScalar } from '../src/backend/host-read.ts';
import { clipByGlobalNorm, globalNorm } from './clip.ts';
import { disposeAll } from '../src/model/variables.ts';
import type { AdamW } from './optimizer/adamw.ts';
import { learningRate, type ScheduleOptions } from './schedule.ts';

export interface BatchSource {
  /** May be asynchronous: an on-policy source samples from the student first. */
  nextBatch(): Batch | Promise<Batch>;
}

/**
 * A loss of the trainable parameters on one batch; runs inside the gradient tape. `observe` records a
 * side metric of the batch (a KD or CE part, an agreement rate), averaged over the step's micro-batches.
 */
export type LossFn = (batch: Batch, observe: MetricSink) => tf.Scalar;
export type MetricSink = (name: string, value: tf.Scalar) => void;

export interface FitOptions {
  /** The optimizer step to start from (0, or the checkpoint's step when resuming). */
  startStep: number;
  maxSteps: number;
  gradAccum: number;
  schedule: ScheduleOptions;
  clipGradNorm: number | null;
}

export interface StepMetrics {
  /** Optimizer steps completed. */
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Input positions processed in this step (all micro-batches). */
  tokens: number;
  tokensPerSecond: number;
  /** What the loss observed, averaged over micro-batches. */
  observed: Record<string, number>;
}

export interface FitHooks {
  /** Called after every optimizer step; validation and checkpoints hang off it. */
  afterStep?(metrics: StepMetrics): Promise<void> | void;
}

/** The loss or gradient became NaN or infinite: training stops before the update is applied. */
export class DivergenceError extends SlmError {
  constructor(
    readonly step: number,
    what: string,
  ) {
    super(`training diverged at step ${step}: ${what} is not finite (try a lower lr or clip_grad_norm)`, {
      code: 'TRAINING_DIVERGED',
    });
  }
}

/**
 * The training loop: per optimizer step, gradients are averaged over `gradAccum` micro-batches, clipped by
 * global norm and applied with the scheduled learning rate. Generic over the model: the loss closes over it.
 */
export async function fit(
  params: Map<string, tf.Variable>,
  optimizer: AdamW,
  batches: BatchSource,
  loss: LossFn,
  options: FitOptions,
  hooks: FitHooks = {},
): Promise<void> {
  const trainable = optimizer.paramNames().map((name) => ({ name, variable: params.get(name)! }));
  for (let step = options.startStep; step < options.maxSteps; step++) {
    const started = performance.now();
    const { grads, meanLoss, tokens, observed } = await accumulateGradients(trainable, batches, loss, options.gradAccum);
    try {
      if (!Number.isFinite(meanLoss)) throw new DivergenceError(step + 1, 'the loss');
      const { norm, clipped } = await clip(grads, options.clipGradNorm);
      if (!Number.isFinite(norm)) throw new DivergenceError(step + 1, 'the gradient norm');
      const lr = learningRate(step, options.schedule);
      optimizer.step(clipped, lr);
      if (clipped !== grads) disposeAll(clipped);
      const seconds = (performance.now() - started) / 1000;
      await hooks.afterStep?.({ step: step + 1, loss: meanLoss, lr, gradNorm: norm, tokens, tokensPerSecond: tokens / seconds, observed });
    } finally {
      disposeAll(grads);
    }
    await yieldToEventLoop();
  }
}

/** Sums gradients over micro-batches and divides by their count, so the update matches one large batch. */
async function accumulateGradients(
  trainable: { name: string; variable: tf.Variable }[],
  batches: BatchSource,
  loss: LossFn,
  microBatches: number,
): Promise<{ grads: Map<string, tf.Tensor>; meanLoss: number; tokens: number; observed: Record<string, number> }> {
  const grads = new Map<string, tf.Tensor>();
  const observed: Record<string, number> = {};
  let lossSum = 0;
  let tokens = 0;
  for (let micro = 0; micro < microBatches; micro++) {
    const batch = await batches.nextBatch();
    tokens += batch.batchSize * batch.seqLen;
    const metrics = keptMetrics();
    const { value, grads: byVariable } = tf.variableGrads(
      () => loss(batch, metrics.observe),
      trainable.map((p) => p.variable),
    );
    lossSum += await readScalar(value);
    await metrics.addTo(observed, 1 / microBatches);
    for (const { name, variable } of trainable) {
      const g = byVariable[variable.name];
      const previous = grads.get(name);
      grads.set(name, previous ? tf.add(previous, g) : g);
      if (previous) {
        previous.dispose();
        g.dispose();
      }
    }
  }
  if (microBatches > 1) {
    for (const [name, g] of grads) {
      grads.set(name, tf.tidy(() => tf.div(g, microBatches)));
      g.dispose();
    }
  }
  return { grads, meanLoss: lossSum / microBatches, tokens, observed };
}

async function clip(grads: Map<string, tf.Tensor>, maxNorm: number | null): Promise<{ norm: number; clipped: Map<string, tf.Tensor> }> {
  if (maxNorm === null) return { norm: await globalNorm(grads), clipped: grads };
  const { grads: clipped, norm } = await clipByGlobalNorm(grads, maxNorm);
  return { norm, clipped };
}

/**
 * A MetricSink that keeps what the loss observes past the tape (which disposes the loss's intermediates),
 * as clones since the loss may return what it observed, for reading afterwards: reads are asynchronous
 * (the webgpu backend has no synchronous one in Node). `addTo` adds each value times `weight`.
 */
export function keptMetrics(): { observe: MetricSink; addTo(observed: Record<string, number>, weight: number): Promise<void> } {
  const kept: [string, tf.Scalar][] = [];
  return {
    observe: (name, metric) => kept.push([name, tf.keep(tf.clone(metric))]),
    async addTo(observed, weight) {
      for (const [name, metric] of kept.splice(0)) observed[name] = (observed[name] ?? 0) + (await readScalar(metric)) * weight;
    },
  };
}

/** Steps are synchronous tensor work: let timers (progress redraws) and signal handlers run between them. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
