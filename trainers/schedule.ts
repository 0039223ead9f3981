export type ScheduleKind = 'cosine' | 'linear' | 'constant';

export interface ScheduleOptions {
  /** Peak learning rate, reached at the end of warm-up. */
  lr: number;
  /** Floor as a fraction of `lr`, reached at `maxSteps` (0 decays to zero); ignored by 'constant'. */
  minLrRatio: number;
  warmupSteps: number;
  maxSteps: number;
  schedule: ScheduleKind;
}

/**
 * Learning rate for the 0-based optimizer step `step` (the number of updates already taken), following
 * Hugging Face's `get_*_schedule_with_warmup` (transformers `optimization.py`). During warm-up the rate is
 * `lr * step / warmupSteps`, so with a warm-up the first update (step 0) uses 0. Then it decays from `lr`
 * at `warmupSteps` to `lr * minLrRatio` at `maxSteps`: cosine as `get_cosine_with_min_lr_schedule_with_warmup`,
 * linear as `get_linear_schedule_with_warmup` lifted onto the floor; 'constant' stays at `lr`.
 * Unlike Hugging Face's cosine, which climbs back up past `maxSteps`, the rate stays at the floor there.
 */
export function learningRate(step: number, options: ScheduleOptions): number {
  checkOptions(options);
  if (!Number.isInteger(step) || step < 0) {
    throw new RangeError(`learningRate: step must be a non-negative integer, got ${step}`);
  }
  const { lr, minLrRatio, warmupSteps, maxSteps, schedule } = options;
  if (step < warmupSteps) return (lr * step) / warmupSteps;
  if (schedule === 'constant') return lr;
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, maxSteps - warmupSteps));
  const decay = schedule === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return lr * (minLrRatio + (1 - minLrRatio) * decay);
}

function checkOptions({ lr, minLrRatio, warmupSteps, maxSteps, schedule }: ScheduleOptions): void {
  if (!(Number.isFinite(lr) && lr >= 0)) throw new RangeError(`learningRate: lr must be finite and >= 0, got ${lr}`);
  if (!(minLrRatio >= 0 && minLrRatio <= 1)) {
    throw new RangeError(`learningRate: minLrRatio must be in [0, 1], got ${minLrRatio}`);
  }
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new RangeError(`learningRate: warmupSteps must be a non-negative integer, got ${warmupSteps}`);
  }
  if (!Number.isInteger(maxSteps) || maxSteps < warmupSteps) {
    throw new RangeError(`learningRate: maxSteps must be an integer >= warmupSteps (${warmupSteps}), got ${maxSteps}`);
  }
  if (schedule !== 'cosine' && schedule !== 'linear' && schedule !== 'constant') {
    throw new RangeError(`learningRate: schedule must be 'cosine', 'linear' or 'constant', got '${schedule}'`);
  }
}

/**
 * Optimizer steps for `epochs` passes over `windows` training windows, as transformers' Trainer counts them:
 * ceil(epochs x steps per epoch), where an epoch is floor(micro-batches / gradAccum) steps (at least 1) and
 * takes ceil(windows / batchSize) micro-batches.
 */
export function stepsForEpochs(epochs: number, { windows, batchSize, gradAccum }: { windows: number; batchSize: number; gradAccum: number }): number {
  if (!(Number.isFinite(epochs) && epochs > 0)) throw new RangeError(`stepsForEpochs: epochs must be a positive number, got ${epochs}`);
  const perEpoch = Math.max(1, Math.floor(Math.ceil(windows / batchSize) / gradAccum));
  return Math.ceil(epochs * perEpoch);
}
