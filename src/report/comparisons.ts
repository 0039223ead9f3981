/**
 * The numbers a run report compares: the student's primary metric against another model's on the same
 * suite (the teacher, or the same student trained with CE alone), as a ratio or a difference, each with a
 * standard error from the two results' standard errors. The two evaluations are treated as independent;
 * they score the same documents, so their errors are in fact positively correlated and the stated
 * uncertainty of a difference errs on the large side.
 */
import type { MetricValue, SuiteResult } from '../eval/runner.ts';
import type { MetricsRecord } from '../run/metrics.ts';

export interface Estimate {
  value: number;
  stderr: number;
}

/** One suite scored by the student and by another model, on the student's primary metric. */
export interface SuitePair {
  suite: string;
  metric: string;
  student: MetricValue;
  other: MetricValue;
  /** Settings that differ between the two evaluations, so the numbers may not be comparable. */
  differences: string[];
}

/**
 * a / b with the first-order (delta method) standard error:
 * se(r)^2 = (se_a / b)^2 + (a * se_b / b^2)^2. Undefined (null) when b is 0.
 */
export function ratioEstimate(a: Estimate, b: Estimate): Estimate | null {
  if (b.value === 0) return null;
  return {
    value: a.value / b.value,
    stderr: Math.hypot(a.stderr / b.value, (a.value * b.stderr) / b.value ** 2),
  };
}

/** a - b with se = sqrt(se_a^2 + se_b^2). */
export function differenceEstimate(a: Estimate, b: Estimate): Estimate {
  return { value: a.value - b.value, stderr: Math.hypot(a.stderr, b.stderr) };
}

/** Suites both evaluated, paired on the student's primary metric (when the other result has it). */
export function pairPrimaryMetrics(student: readonly SuiteResult[], other: readonly SuiteResult[]): SuitePair[] {
  const pairs: SuitePair[] = [];
  for (const mine of student) {
    const theirs = other.find((result) => result.suite === mine.suite);
    const metric = mine.primaryMetric;
    if (!theirs?.metrics[metric] || !mine.metrics[metric]) continue;
    pairs.push({ suite: mine.suite, metric, student: mine.metrics[metric], other: theirs.metrics[metric], differences: settingDifferences(mine, theirs) });
  }
  return pairs;
}

function settingDifferences(student: SuiteResult, other: SuiteResult): string[] {
  const keys = ['version', 'promptStyle', 'shots', 'n'] as const;
  return keys.filter((key) => student[key] !== other[key]).map((key) => `${key} ${student[key]} vs ${other[key]}`);
}

export interface TrainingThroughput {
  /** Steps that logged tokens_per_second. */
  steps: number;
  median: number;
  min: number;
  max: number;
  /** Wall-clock seconds at the last step (training plus validation, evaluations and checkpoints). */
  elapsed: number | null;
}

/** Per-step training throughput from metrics.jsonl; null when no step logged it. */
export function trainingThroughput(records: readonly MetricsRecord[]): TrainingThroughput | null {
  const rates = records.map((r) => r.tokens_per_second).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (rates.length === 0) return null;
  const sorted = [...rates].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  const elapsed = records.at(-1)?.elapsed;
  return { steps: rates.length, median, min: sorted[0], max: sorted.at(-1)!, elapsed: typeof elapsed === 'number' ? elapsed : null };
}

/** The last finite value of a metric in the log, with its step. */
export function lastValue(records: readonly MetricsRecord[], key: string): { step: number; value: number } | null {
  for (let i = records.length - 1; i >= 0; i--) {
    const value = records[i][key];
    if (typeof value === 'number' && Number.isFinite(value)) return { step: records[i].step, value };
  }
  return null;
}
