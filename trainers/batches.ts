/**
 * Batches of packed windows: a shuffled, endless, resumable iterator for training and a fixed-order one
 * for validation. Windows that hold preference pairs (see packPairs) are batched a pair at a time: a batch
 * of n pairs has the n chosen rows first, then the n rejected rows in the same order.
 */
import { Rng } from '../src/util/rng.ts';
import type { PackedWindows, SoftLabelBlock } from './packing.ts';


export interface Batch {
  /** [batchSize * seqLen], row-major. */
  inputs: Int32Array;
  /** [batchSize * seqLen]: targets[b, t] = the token after inputs[b, t]. */
  targets: Int32Array;
  /** [batchSize * seqLen]: 1 where targets[b, t] counts in the loss. */
  mask: Float32Array;
  batchSize: number;
  seqLen: number;
  /** Number of mask = 1 positions. */
  tokens: number;
  /** The teacher's top-k for each target, [batchSize * seqLen, k]; -Infinity logprobs where there is none. */
  softLabels?: SoftLabelBlock;
  /** Responses the student sampled itself (on-policy distillation): learned from the teacher's distribution only. */
  onPolicy?: boolean;
  /** Per row, the lengths of the examples packed in it: each attends only to itself, from position 0. */
  segments?: number[][];
  /** Preference pairs in the batch: rows [0, pairs) are the chosen completions, [pairs, 2 * pairs) the rejected. */
  pairs?: number;
  /** Per row, the reference model's summed log-probability of its targets, when the windows carry one. */
  referenceLogps?: Float32Array;
}

/** Enough to rebuild the iterator exactly: the epoch's order is re-drawn from the Rng state it began with. */
export interface BatchIteratorState {
  epoch: number;
  /** Windows of this epoch's order already served. */
  position: number;
  /** Rng state before this epoch's shuffle. */
  rngState: number;
}

/**
 * Each epoch visits every window (or pair) once in a fresh seeded order; a batch that runs past the end of
 * an epoch takes its remaining rows from the next, so every batch has batchSize windows (pairs).
 */
export class BatchIterator implements Iterable<Batch> {
  private readonly rng: Rng;
  private epoch = 0;
  private position = 0;
  private epochRngState = 0;
  private order: number[] = [];
  /** Windows, or pairs of windows. */
  private readonly units: number;

  constructor(
    private readonly windows: PackedWindows,
    private readonly batchSize: number,
    seed: number,
  ) {
    checkBatchSize(batchSize);
    if (windows.count === 0) throw new RangeError('BatchIterator: no training windows (is the dataset empty?)');
    this.units = unitCount(windows);
    this.rng = new Rng(seed);
    this.startEpoch(0, this.rng.getState());
  }

  nextBatch(): Batch {
    const units: number[] = [];
    for (let row = 0; row < this.batchSize; row++) {
      if (this.position === this.order.length) this.startEpoch(this.epoch + 1, this.rng.getState());
      units.push(this.order[this.position++]);
    }
    return batchOf(units, this.windows);
  }

  *[Symbol.iterator](): Iterator<Batch> {
    for (;;) yield this.nextBatch();
  }

  getState(): BatchIteratorState {
    return { epoch: this.epoch, position: this.position, rngState: this.epochRngState };
  }

  setState(state: BatchIteratorState): void {
    const { epoch, position, rngState } = state;
    if (!Number.isInteger(epoch) || epoch < 0 || !Number.isInteger(position) || position < 0 || position > this.units) {
      throw new RangeError(
        `BatchIterator.setState: expected epoch >= 0 and position in [0, ${this.units}], got ${JSON.stringify(state)}`,
      );
    }
    this.startEpoch(epoch, rngState);
    this.position = position;
  }

  private startEpoch(epoch: number, rngState: number): void {
    this.rng.setState(rngState);
    this.epochRngState = rngState;
    this.epoch = epoch;
    this.position = 0;
    this.order = this.rng.shuffle(Array.from({ length: this.units }, (_, i) => i));
  }
}

/** Windows (pairs) in packing order; the last batch may be smaller than batchSize. */
export class ValidationBatches {
  constructor(
    private readonly windows: PackedWindows,
    private readonly batchSize: number,
  ) {
    checkBatchSize(batchSize);
  }

  get batchCount(): number {
    return Math.ceil(unitCount(this.windows) / this.batchSize);
  }

  *batches(maxBatches = Infinity): Generator<Batch> {
    const count = Math.min(maxBatches, this.batchCount);
    const units = unitCount(this.windows);
    for (let b = 0; b < count; b++) {
      const first = b * this.batchSize;
      const size = Math.min(this.batchSize, units - first);
      yield batchOf(Array.from({ length: size }, (_, i) => first + i), this.windows);
    }
  }
}

function unitCount(windows: PackedWindows): number {
  return windows.pairs ? windows.count / 2 : windows.count;
}

/** The batch of these windows, or of these pairs: their chosen windows' rows, then their rejected windows' rows. */
function batchOf(units: readonly number[], windows: PackedWindows): Batch {
  const order = windows.pairs ? [...units.map((u) => 2 * u), ...units.map((u) => 2 * u + 1)] : units;
  const batch = emptyBatch(order.length, windows);
  order.forEach((window, row) => fillRow(batch, row, windows, window));
  if (windows.pairs) batch.pairs = units.length;
  return batch;
}

function emptyBatch(batchSize: number, { seqLen, softLabels, segments, referenceLogps }: PackedWindows): Batch {
  const size = batchSize * seqLen;
  const batch: Batch = {
    inputs: new Int32Array(size),
    targets: new Int32Array(size),
    mask: new Float32Array(size),
    batchSize,
    seqLen,
    tokens: 0,
  };
  if (softLabels) {
    const { k } = softLabels;
    batch.softLabels = { k, ids: new Int32Array(size * k), logprobs: new Float32Array(size * k) };
  }
  if (segments) batch.segments = [];
  if (referenceLogps) batch.referenceLogps = new Float32Array(batchSize);
  return batch;
}

function fillRow(batch: Batch, row: number, windows: PackedWindows, window: number): void {
  const T = windows.seqLen;
  const start = window * (T + 1);
  const offset = row * T;
  batch.inputs.set(windows.ids.subarray(start, start + T), offset);
  batch.targets.set(windows.ids.subarray(start + 1, start + T + 1), offset);
  const mask = windows.mask.subarray(start + 1, start + T + 1);
  batch.mask.set(mask, offset);
  batch.tokens += mask.reduce((sum, m) => sum + m, 0);
  if (batch.segments && windows.segments) batch.segments[row] = windows.segments[window];
  if (batch.referenceLogps && windows.referenceLogps) batch.referenceLogps[row] = windows.referenceLogps[window];
  if (batch.softLabels && windows.softLabels) {
    const { k } = windows.softLabels;
    const from = (start + 1) * k;
    batch.softLabels.ids.set(windows.softLabels.ids.subarray(from, from + T * k), offset * k);
    batch.softLabels.logprobs.set(windows.softLabels.logprobs.subarray(from, from + T * k), offset * k);
  }
}

function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize: expected a positive integer, got ${batchSize}`);
  }
}
