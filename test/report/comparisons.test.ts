import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SuiteResult } from '../../src/eval/runner.ts';
import { differenceEstimate, lastValue, pairPrimaryMetrics, ratioEstimate, trainingThroughput } from '../../src/report/comparisons.ts';
import { verdict } from '../../src/report/headline.ts';
import type { MetricsRecord } from '../../src/run/metrics.ts';
import { Rng } from '../../src/util/rng.ts';

describe('ratioEstimate', () => {
  it('propagates both standard errors to first order, as numerical derivatives of a / b do', () => {
    const estimate = fc.record({ value: fc.double({ min: 0.05, max: 1, noNaN: true }), stderr: fc.double({ min: 0, max: 0.1, noNaN: true }) });
    fc.assert(
      fc.property(estimate, estimate, (a, b) => {
        const h = 1e-6;
        const dA = (a.value + h) / b.value - (a.value - h) / b.value;
        const dB = a.value / (b.value + h) - a.value / (b.value - h);
        const expected = Math.sqrt(((dA / (2 * h)) * a.stderr) ** 2 + ((dB / (2 * h)) * b.stderr) ** 2);
        const ratio = ratioEstimate(a, b)!;
        expect(ratio.value).toBeCloseTo(a.value / b.value, 12);
        expect(ratio.stderr).toBeCloseTo(expected, 6);
      }),
      { seed: 5, numRuns: 200 },
    );
  });

  it('agrees with the spread of simulated ratios when the errors are small', () => {
    const rng = new Rng(3);
    const a = { value: 0.3, stderr: 0.006 };
    const b = { value: 0.6, stderr: 0.009 };
    const draws = Array.from({ length: 20_000 }, () => (a.value + a.stderr * rng.normal()) / (b.value + b.stderr * rng.normal()));
    const mean = draws.reduce((s, v) => s + v, 0) / draws.length;
    const std = Math.sqrt(draws.reduce((s, v) => s + (v - mean) ** 2, 0) / (draws.length - 1));
    expect(ratioEstimate(a, b)!.stderr).toBeCloseTo(std, 3);
  });

  it('keeps the uncertainty of a zero numerator, and has no ratio for a zero denominator', () => {
    expect(ratioEstimate({ value: 0, stderr: 0.02 }, { value: 0.5, stderr: 0.03 })).toEqual({ value: 0, stderr: 0.04 });
    expect(ratioEstimate({ value: 0.2, stderr: 0.02 }, { value: 0, stderr: 0 })).toBeNull();
  });
});

describe('differenceEstimate and its verdict', () => {
  it('adds the variances', () => {
    expect(differenceEstimate({ value: 0.35, stderr: 0.03 }, { value: 0.3, stderr: 0.04 })).toEqual({ value: 0.35 - 0.3, stderr: 0.05 });
  });

  it('calls a difference only beyond two combined standard errors, in either direction', () => {
    expect(verdict({ value: 0.09, stderr: 0.05 })).toMatch(/does not tell them apart/);
    expect(verdict({ value: 0.11, stderr: 0.05 })).toMatch(/KD is ahead/);
    expect(verdict({ value: -0.11, stderr: 0.05 })).toMatch(/KD is behind/);
    expect(verdict({ value: 0, stderr: 0 })).toMatch(/does not tell them apart/);
  });
});

function result(suite: string, primaryMetric: string, metrics: Record<string, number>, settings: Partial<SuiteResult> = {}): SuiteResult {
  return {
    suite,
    version: '1',
    promptStyle: '5-shot',
    shots: 5,
    seed: 0,
    model: { name: 'm', digest: 'd' },
    n: 100,
    primaryMetric,
    metrics: Object.fromEntries(Object.entries(metrics).map(([name, value]) => [name, { value, stderr: 0.01, n: 100 }])),
    groups: {},
    macro: {},
    cached: 0,
    seconds: 1,
    documentsPerSecond: 100,
    ...settings,
  };
}

describe('pairPrimaryMetrics', () => {
  it("pairs suites on the student's primary metric and names the settings that differ", () => {
    const student = [result('gsm8k', 'strict', { strict: 0.2, flexible: 0.3 }), result('mmlu', 'acc', { acc: 0.4 }), result('custom', 'em', { em: 0.5 })];
    const other = [result('gsm8k', 'flexible', { strict: 0.6, flexible: 0.7 }, { shots: 0, promptStyle: 'zero-shot' }), result('mmlu', 'acc_norm', { acc_norm: 0.5 })];
    const pairs = pairPrimaryMetrics(student, other);
    expect(pairs).toHaveLength(1);
    expect(pairs[0]).toMatchObject({ suite: 'gsm8k', metric: 'strict', student: { value: 0.2 }, other: { value: 0.6 } });
    expect(pairs[0].differences).toEqual(['promptStyle 5-shot vs zero-shot', 'shots 5 vs 0']);
  });
});

describe('trainingThroughput and lastValue', () => {
  it('takes the median of the logged rates and the last elapsed time', () => {
    const records = [5, 1, 4, 2].map((rate, i) => ({ step: i + 1, tokens_per_second: rate, elapsed: i * 2 }));
    expect(trainingThroughput(records)).toEqual({ steps: 4, median: 3, min: 1, max: 5, elapsed: 6 });
    expect(trainingThroughput(records.slice(0, 3))!.median).toBe(4);
    expect(trainingThroughput([{ step: 1, loss: 2 }])).toBeNull();
  });

  it('finds the last finite value of a key', () => {
    const records: MetricsRecord[] = [
      { step: 1, val_loss: 3 },
      { step: 2, loss: 1 },
      { step: 3, val_loss: null },
    ];
    expect(lastValue(records, 'val_loss')).toEqual({ step: 1, value: 3 });
    expect(lastValue(records, 'kd')).toBeNull();
  });
});
