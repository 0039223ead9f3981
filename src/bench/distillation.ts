import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../../trainers/batches.ts';
import type { SoftLabelBlock } from '../../trainers/packing.ts';
import { chunkedFullDistillLoss, headTensorRows } from '../../trainers/losses/chunked-distill.ts';
import { fullDistill, maskedMean, type DivergenceOptions } from '../../trainers/losses/distill.ts';
import { distillationObjective, type DistillObjectiveOptions } from '../../trainers/losses/distillation-objective.ts';
import { fit, type LossFn, type StepMetrics } from '../../trainers/loop.ts';
import { AdamW } from '../../trainers/optimizer/adamw.ts';
import { CausalLM } from '../model/causal-lm.ts';
import type { ModelConfig } from '../model/config.ts';
import { Rng } from '../util/rng.ts';
import { measureTensorPeak, type TensorPeak } from './tensor-peak.ts';
import { BENCH_MODEL } from './training.ts';

/** The recipe defaults of `distill`: alpha 0.5, T 1, forward KL, and a tail bucket for top-k labels. */
const OBJECTIVE: Omit<DistillObjectiveOptions, 'online'> = {
  alpha: 0.5,
  temperature: 1,
  divergence: 'forward_kl',
  beta: 0.5,
  tail: 'bucket',
  storedTemperature: 1,
};

const CHUNKS = { rowsPerChunk: 256, vocabPerChunk: 4096 };
const SCHEDULE = { lr: 1e-4, minLrRatio: 0.1, warmupSteps: 0, maxSteps: 1_000_000, schedule: 'constant' as const };
const TEACHER_SEED = 1;

export interface DistillationBenchOptions {
  /** The student; the benchmark model by default, so tokens/s compare with the training bench. */
  config?: ModelConfig;
  batchSize: number;
  seqLen: number;
  steps: number;
  /** Soft labels per position for the top-k mode. */
  k: number;
}

export interface DistillationModeResult {
  tokensPerSecond: number;
  secondsPerStep: number;
  /** This mode's tokens/s over plain CE's, measured in the same run through the same objective. */
  ratioToCe: number;
  /** The last step's loss and KD part (null for CE). */
  loss: number;
  kd: number | null;
}

export interface DistillationBenchResult {
  batchSize: number;
  seqLen: number;
  steps: number;
  k: number;
  /** The full mode's teacher. */
  teacher: string;
  rowsPerChunk: number;
  vocabPerChunk: number;
  /** Plain CE: distillationObjective with alpha 0 and no teacher. */
  ceTokensPerSecond: number;
  ce: DistillationModeResult;
  topK: DistillationModeResult;
  full: DistillationModeResult;
  /** All of it, warm-up steps and set-up included. */
  wallSeconds: number;
}

/**
 * Training steps (forward, backward, AdamW) of a student through distillationObjective in three modes on
 * the same random tokens: plain CE, KD against random top-k soft labels, and KD against the full
 * distribution of an in-process teacher (the student's config with another seed, so the teacher costs one
 * more forward of the student's size), computed in chunks. The modes take their timed steps in rotation
 * (CE, top-k, full, CE, ...), so a shared machine's load falls on all three alike and their ratios hold.
 */
export async function benchDistillation(options: DistillationBenchOptions): Promise<DistillationBenchResult> {
  const { config = BENCH_MODEL, batchSize, seqLen, steps, k } = options;
  const started = performance.now();
  const shape = { vocab: config.vocabSize, batchSize, seqLen };
  const teacher = CausalLM.init(config, { seed: TEACHER_SEED });
  const runs = (['ce', 'top-k', 'full'] as const).map((mode) => new ModeRun(config, mode, shape, k, teacher));
  try {
    for (const run of runs) await run.step(); // untimed warm-up
    for (let i = 0; i < steps; i++) for (const run of runs) await run.step(true);
    const [ce, topK, full] = runs.map((run) => run.result(steps, shape));
    const relative = (timed: TimedMode): DistillationModeResult => ({ ...timed, ratioToCe: timed.tokensPerSecond / ce.tokensPerSecond });
    return {
      batchSize,
      seqLen,
      steps,
      k,
      teacher: `the student's config, seed ${TEACHER_SEED}`,
      ...CHUNKS,
      ceTokensPerSecond: ce.tokensPerSecond,
      ce: relative(ce),
      topK: relative(topK),
      full: relative(full),
      wallSeconds: (performance.now() - started) / 1000,
    };
  } finally {
    for (const run of runs) run.dispose();
    teacher.dispose();
  }
}

type Mode = 'ce' | 'top-k' | 'full';
type TimedMode = Omit<DistillationModeResult, 'ratioToCe'>;

interface BatchShape {
  vocab: number;
  batchSize: number;
  seqLen: number;
}

/** A fresh student (seed 0) of one mode on batches from seed 1, stepped one optimizer step at a time. */
class ModeRun {
  private readonly student: CausalLM;
  private readonly optimizer: AdamW;
  private readonly loss: LossFn;
  private readonly batches: { nextBatch: () => Batch };
  private stepsTaken = 0;
  private timedSeconds = 0;
  private last: StepMetrics | undefined;

  constructor(config: ModelConfig, mode: Mode, shape: BatchShape, k: number, teacher: CausalLM) {
    this.student = CausalLM.init(config, { seed: 0 });
    this.optimizer = new AdamW(this.student.params, { lr: 1e-4, betas: [0.9, 0.95], weightDecay: 0.1 });
    this.loss = objective(this.student, mode, teacher);
    this.batches = { nextBatch: randomBatches(shape, mode === 'top-k' ? k : 0) };
  }

  async step(timed = false): Promise<void> {
    const started = performance.now();
    await fit(this.student.params, this.optimizer, this.batches, this.loss, { startStep: this.stepsTaken, maxSteps: this.stepsTaken + 1, gradAccum: 1, schedule: SCHEDULE, clipGradNorm: 1 }, {
      afterStep: (metrics) => void (this.last = metrics),
    });
    if (timed) this.timedSeconds += (performance.now() - started) / 1000;
    this.stepsTaken++;
  }

  result(steps: number, shape: BatchShape): TimedMode {
    return {
      tokensPerSecond: (steps * shape.batchSize * shape.seqLen) / this.timedSeconds,
      secondsPerStep: this.timedSeconds / steps,
      loss: this.last!.loss,
      kd: this.last!.observed.kd ?? null,
    };
  }

  dispose(): void {
    this.optimizer.dispose();
    this.student.dispose();
  }
}

function objective(student: CausalLM, mode: Mode, teacher?: CausalLM): LossFn {
  if (mode === 'ce') return distillationObjective(student, student.project, { ...OBJECTIVE, alpha: 0 });
  const online = mode === 'full' ? { model: teacher!, ...CHUNKS } : undefined;
  return distillationObjective(student, student.project, { ...OBJECTIVE, online });
}

/**
 * Random tokens with every position scored, and k random soft labels per position when k > 0 (from their
 * own stream, so every mode sees the same tokens).
 */
function randomBatches({ vocab, batchSize, seqLen }: BatchShape, k: number): () => Batch {
  const rng = new Rng(1);
  const labelRng = new Rng(3);
  const size = batchSize * seqLen;
  return () => ({
    inputs: Int32Array.from({ length: size }, () => rng.int(vocab)),
    targets: Int32Array.from({ length: size }, () => rng.int(vocab)),
    mask: new Float32Array(size).fill(1),
    batchSize,
    seqLen,
    tokens: size,
    ...(k > 0 && { softLabels: randomSoftLabels(labelRng, size, k, vocab) }),
  });
}

/**
 * Top-k soft labels as a teacher would store them: per position k distinct ids with log-probabilities in
 * descending order that leave 5-50% of the mass to the rest of the vocabulary (the tail bucket).
 */
export function randomSoftLabels(rng: Rng, positions: number, k: number, vocab: number): SoftLabelBlock {
  if (!(Number.isInteger(k) && k >= 1 && k <= vocab)) {
    throw new RangeError(`randomSoftLabels: k must be an integer in [1, vocab = ${vocab}], got ${k}`);
  }
  const ids = new Int32Array(positions * k);
  const logprobs = new Float32Array(positions * k);
  for (let position = 0; position < positions; position++) {
    const logits = Array.from({ length: k }, () => 2 * rng.normal());
    const logTopMass = Math.log(1 - (0.05 + 0.45 * rng.next()));
    const logZ = logSumExp(logits) - logTopMass;
    ids.set(distinctIds(rng, k, vocab), position * k);
    logprobs.set(logits.map((x) => x - logZ).sort((a, b) => b - a), position * k);
  }
  return { k, ids, logprobs };
}

function distinctIds(rng: Rng, k: number, vocab: number): number[] {
  const ids = new Set<number>();
  while (ids.size < k) ids.add(rng.int(vocab));
  return [...ids];
}

function logSumExp(xs: number[]): number {
  const max = Math.max(...xs);
  return max + Math.log(xs.reduce((sum, x) => sum + Math.exp(x - max), 0));
}

export interface ChunkedLossMemoryOptions {
  rows: number;
  hidden: number;
  vocab: number;
  rowChunk?: number;
  vocabChunk?: number;
  /** Also run the unchunked loss, which materializes several [rows, vocab] tensors (default true). */
  unchunked?: boolean;
}

export interface LossMeasurement {
  loss: number;
  peak: TensorPeak;
}

export interface ChunkedLossMemoryResult {
  rows: number;
  hidden: number;
  vocab: number;
  rowChunk: number;
  vocabChunk: number;
  chunked: LossMeasurement;
  unchunked: LossMeasurement | null;
  /** |chunked loss - unchunked loss|, and the largest difference of their gradients. */
  lossAbsDifference: number | null;
  gradMaxAbsDifference: number | null;
  wallSeconds: number;
}

/**
 * Peak tensor memory of the full-vocabulary KD loss and its gradient for the student's hidden states (the
 * streamed-head path: both heads frozen), chunked against unchunked (fullDistill on whole [rows, vocab]
 * logits, through autodiff), on random student and teacher hidden states and heads of one shape.
 */
export async function benchChunkedLossMemory(options: ChunkedLossMemoryOptions): Promise<ChunkedLossMemoryResult> {
  const { rows, hidden, vocab, rowChunk = CHUNKS.rowsPerChunk, vocabChunk = CHUNKS.vocabPerChunk } = options;
  const started = performance.now();
  const input = randomLossInput(rows, hidden, vocab);
  const divergence: DivergenceOptions = OBJECTIVE;
  try {
    const heads = { studentHead: headTensorRows(input.studentHead), teacherHead: headTensorRows(input.teacherHead) };
    const chunkedLoss = (h: tf.Tensor2D) => chunkedFullDistillLoss({ ...input, ...heads, studentHidden: h }, { ...divergence, rowChunk, vocabChunk }).loss;
    const unchunkedLoss = (h: tf.Tensor2D) =>
      maskedMean(fullDistill(tf.matMul(h, input.studentHead), tf.matMul(input.teacherHidden, input.teacherHead), divergence), input.mask);
    const chunked = await measureLoss(chunkedLoss, input);
    const unchunked = options.unchunked === false ? null : await measureLoss(unchunkedLoss, input);
    return {
      rows,
      hidden,
      vocab,
      rowChunk,
      vocabChunk,
      chunked: chunked.measurement,
      unchunked: unchunked?.measurement ?? null,
      lossAbsDifference: unchunked && Math.abs(chunked.measurement.loss - unchunked.measurement.loss),
      gradMaxAbsDifference: unchunked && maxAbsDifference(chunked.grad, unchunked.grad),
      wallSeconds: (performance.now() - started) / 1000,
    };
  } finally {
    tf.dispose(Object.values(input));
  }
}

interface LossInput {
  studentHidden: tf.Tensor2D; // [N, H]
  studentHead: tf.Tensor2D; // [H, V]
  teacherHidden: tf.Tensor2D; // [N, H]
  teacherHead: tf.Tensor2D; // [H, V]
  mask: tf.Tensor1D; // [N]
}

/** Hidden states ~ N(0, 1) and heads ~ N(0, 0.3^2): logits of std about 0.3 sqrt(H), as peaked as a real model's. */
function randomLossInput(rows: number, hidden: number, vocab: number): LossInput {
  const rng = new Rng(2);
  const random = (r: number, c: number, std: number) => tf.tensor2d(Float32Array.from({ length: r * c }, () => rng.normal() * std), [r, c]);
  return {
    studentHidden: random(rows, hidden, 1),
    studentHead: random(hidden, vocab, 0.3),
    teacherHidden: random(rows, hidden, 1),
    teacherHead: random(hidden, vocab, 0.3),
    mask: tf.ones([rows]),
  };
}

type StudentLoss = (hidden: tf.Tensor2D) => tf.Scalar;

/** The loss and its gradient for the student's hidden states, and the tensor peak of computing them. */
async function measureLoss(loss: StudentLoss, input: LossInput): Promise<{ measurement: LossMeasurement; grad: Float32Array }> {
  let value = NaN;
  let grad: Float32Array = new Float32Array();
  const peak = await measureTensorPeak(() => {
    const result = tf.valueAndGrad((h: tf.Tensor) => loss(h as tf.Tensor2D))(input.studentHidden);
    value = result.value.dataSync()[0];
    grad = result.grad.dataSync() as Float32Array;
    tf.dispose([result.value, result.grad]);
  });
  return { measurement: { loss: value, peak }, grad };
}

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  return a.reduce((max, x, i) => Math.max(max, Math.abs(x - b[i])), 0);
}
