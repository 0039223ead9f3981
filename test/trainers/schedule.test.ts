import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { learningRate, stepsForEpochs, type ScheduleOptions } from '../../trainers/schedule.ts';

const base: ScheduleOptions = { lr: 1e-3, minLrRatio: 0.1, warmupSteps: 10, maxSteps: 110, schedule: 'cosine' };

describe('learningRate', () => {
  it('warms up linearly from 0 at step 0 to lr at warmupSteps', () => {
    expect(learningRate(0, base)).toBe(0);
    expect(learningRate(1, base)).toBeCloseTo(1e-4, 15);
    expect(learningRate(5, base)).toBeCloseTo(5e-4, 15);
    expect(learningRate(9, base)).toBeCloseTo(9e-4, 15);
    expect(learningRate(10, base)).toBeCloseTo(1e-3, 15);
  });

  it('follows the cosine from lr to lr * minLrRatio between warmupSteps and maxSteps', () => {
    // 0.1 + 0.9 * (1 + cos(pi * p)) / 2 at p = 1/4, 1/2, 3/4, 1
    expect(learningRate(35, base)).toBeCloseTo(1e-3 * (0.1 + 0.45 * (1 + Math.SQRT1_2)), 15);
    expect(learningRate(60, base)).toBeCloseTo(0.55e-3, 15);
    expect(learningRate(85, base)).toBeCloseTo(1e-3 * (0.1 + 0.45 * (1 - Math.SQRT1_2)), 15);
    expect(learningRate(110, base)).toBeCloseTo(1e-4, 15);
    expect(learningRate(500, base)).toBeCloseTo(1e-4, 15);
  });

  it('decays linearly for the linear schedule, and to zero with minLrRatio 0', () => {
    const linear: ScheduleOptions = { ...base, schedule: 'linear' };
    expect(learningRate(35, linear)).toBeCloseTo(1e-3 * (0.1 + 0.9 * 0.75), 15);
    expect(learningRate(60, linear)).toBeCloseTo(0.55e-3, 15);
    expect(learningRate(110, linear)).toBeCloseTo(1e-4, 15);
    expect(learningRate(60, { ...linear, minLrRatio: 0 })).toBeCloseTo(0.5e-3, 15);
    expect(learningRate(110, { ...base, minLrRatio: 0 })).toBeCloseTo(0, 15);
  });

  it('stays at lr after warm-up for the constant schedule', () => {
    const constant: ScheduleOptions = { ...base, schedule: 'constant' };
    expect(learningRate(5, constant)).toBeCloseTo(5e-4, 15);
    expect(learningRate(10, constant)).toBe(1e-3);
    expect(learningRate(1000, constant)).toBe(1e-3);
  });

  it('starts at lr without warm-up', () => {
    expect(learningRate(0, { ...base, warmupSteps: 0 })).toBe(1e-3);
  });

  it("equals Hugging Face's cosine-with-min-lr lambda times lr up to maxSteps", () => {
    // transformers' _get_cosine_schedule_with_warmup_lr_lambda with num_cycles 0.5 and min_lr_rate
    const hf = (step: number, o: ScheduleOptions): number => {
      if (step < o.warmupSteps) return o.lr * (step / Math.max(1, o.warmupSteps));
      const progress = (step - o.warmupSteps) / Math.max(1, o.maxSteps - o.warmupSteps);
      const factor = 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress));
      return o.lr * Math.max(0, factor * (1 - o.minLrRatio) + o.minLrRatio);
    };
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 0, max: 200 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (warmupSteps, span, minLrRatio, where) => {
          const maxSteps = warmupSteps + span;
          const options: ScheduleOptions = { lr: 3e-4, minLrRatio, warmupSteps, maxSteps, schedule: 'cosine' };
          const step = Math.round(where * options.maxSteps);
          expect(learningRate(step, options)).toBeCloseTo(hf(step, options), 15);
        },
      ),
      { seed: 42 },
    );
  });

  it('never rises after warm-up and stays within [lr * minLrRatio, lr]', () => {
    for (const schedule of ['cosine', 'linear', 'constant'] as const) {
      const options = { ...base, schedule };
      let previous = Infinity;
      for (let step = options.warmupSteps; step <= options.maxSteps + 20; step++) {
        const rate = learningRate(step, options);
        expect(rate).toBeLessThanOrEqual(previous);
        expect(rate).toBeGreaterThanOrEqual(options.lr * options.minLrRatio - 1e-18);
        expect(rate).toBeLessThanOrEqual(options.lr);
        previous = rate;
      }
    }
  });

  it('rejects bad arguments, naming them', () => {
    expect(() => learningRate(-1, base)).toThrow(/step must be a non-negative integer/);
    expect(() => learningRate(1.5, base)).toThrow(/step must be a non-negative integer/);
    expect(() => learningRate(0, { ...base, maxSteps: 5 })).toThrow(
      /maxSteps must be an integer >= warmupSteps \(10\)/,
    );
    expect(() => learningRate(0, { ...base, minLrRatio: 2 })).toThrow(/minLrRatio must be in \[0, 1\]/);
    expect(() => learningRate(0, { ...base, schedule: 'step' as 'cosine' })).toThrow(/schedule must be/);
  });
});

describe('stepsForEpochs', () => {
  it("counts as transformers' Trainer: floor(micro-batches / grad_accum) steps an epoch, at least 1, times epochs, rounded up", () => {
    expect(stepsForEpochs(1, { windows: 100, batchSize: 8, gradAccum: 1 })).toBe(13); // 13 micro-batches, the last short
    expect(stepsForEpochs(3, { windows: 100, batchSize: 8, gradAccum: 1 })).toBe(39);
    expect(stepsForEpochs(1, { windows: 100, batchSize: 8, gradAccum: 4 })).toBe(3); // 13 micro-batches: 3 whole steps
    expect(stepsForEpochs(2.5, { windows: 100, batchSize: 8, gradAccum: 4 })).toBe(8);
    expect(stepsForEpochs(0.5, { windows: 3, batchSize: 8, gradAccum: 4 })).toBe(1); // less than a step's worth: one step
    expect(() => stepsForEpochs(0, { windows: 3, batchSize: 8, gradAccum: 1 })).toThrow('stepsForEpochs: epochs must be a positive number, got 0');
  });
});
