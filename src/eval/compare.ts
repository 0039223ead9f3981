/**
 * Two sets of evaluation results side by side, and the gate a nightly job runs: B regresses when a
 * gated metric (each suite's primary one, or those named) drops below A's by more than the threshold, either an absolute drop
 * (`maxDrop`, as a fraction: 0.02 is two points) or a number of combined standard errors
 * (`maxDropStderr`: K * sqrt(se_A^2 + se_B^2)).
 */
import { SlmError } from '../util/errors.ts';
import type { MetricValue, SuiteResult } from './runner.ts';

/** The exit code of a comparison that could not be made (as opposed to 1, a regression). */
export const COMPARE_FAILED_EXIT_CODE = 2;

export class CompareError extends SlmError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'ERR_COMPARE', exitCode: COMPARE_FAILED_EXIT_CODE, cause });
  }
}

export interface Gate {
  maxDrop?: number;
  maxDropStderr?: number;
}

/** Without a threshold, a drop of more than two standard errors fails. */
export const DEFAULT_GATE: Gate = { maxDropStderr: 2 };

export interface ComparisonRow {
  suite: string;
  metric: string;
  primary: boolean;
  /** Whether the gate applies to this row. */
  gated: boolean;
  a: MetricValue;
  b: MetricValue;
  /** b - a. */
  delta: number;
  /** The largest drop allowed (gated metrics only). */
  allowedDrop: number | null;
  regressed: boolean;
}

export interface Comparison {
  rows: ComparisonRow[];
  regressed: boolean;
  /** Suites present on one side only, and settings that differ (so the numbers may not be comparable). */
  warnings: string[];
}

/**
 * Gates on `metrics` where given (names as the results have them, e.g. `acc` or `exact_match,strict-match`),
 * else on each suite's primary metric. Throws a CompareError when A and B share no suite, or a named metric
 * is in none of the shared ones.
 */
export function compareResults(a: readonly SuiteResult[], b: readonly SuiteResult[], gate: Gate = DEFAULT_GATE, metrics?: readonly string[]): Comparison {
  const warnings: string[] = [];
  const rows: ComparisonRow[] = [];
  const bySuite = new Map(b.map((result) => [result.suite, result]));
  for (const left of a) {
    const right = bySuite.get(left.suite);
    if (!right) {
      warnings.push(`suite ${left.suite} is in A only`);
      continue;
    }
    warnings.push(...settingDifferences(left, right));
    for (const [metric, valueA] of Object.entries(left.metrics)) {
      const valueB = right.metrics[metric];
      if (!valueB) continue;
      const primary = metric === left.primaryMetric;
      const gated = metrics ? metrics.includes(metric) : primary;
      const allowedDrop = gated ? allowedDropFor(valueA, valueB, gate) : null;
      const delta = valueB.value - valueA.value;
      rows.push({ suite: left.suite, metric, primary, gated, a: valueA, b: valueB, delta, allowedDrop, regressed: allowedDrop !== null && -delta > allowedDrop });
    }
  }
  for (const right of b) if (!a.some((left) => left.suite === right.suite)) warnings.push(`suite ${right.suite} is in B only`);
  if (rows.length === 0) {
    throw new CompareError(`A (${a.map((r) => r.suite).join(', ')}) and B (${b.map((r) => r.suite).join(', ')}) have no suite and metric in common: nothing to compare`);
  }
  const missing = (metrics ?? []).filter((metric) => !rows.some((row) => row.metric === metric));
  if (missing.length > 0) {
    const known = [...new Set(rows.map((row) => row.metric))].join(', ');
    throw new CompareError(`--metric ${missing.join(', ')}: in no suite both sides hold (metrics there: ${known})`);
  }
  return { rows, regressed: rows.some((row) => row.regressed), warnings };
}

function allowedDropFor(a: MetricValue, b: MetricValue, gate: Gate): number {
  if (gate.maxDrop !== undefined) return gate.maxDrop;
  return (gate.maxDropStderr ?? 0) * Math.sqrt(a.stderr ** 2 + b.stderr ** 2);
}

function settingDifferences(a: SuiteResult, b: SuiteResult): string[] {
  const keys = ['version', 'promptStyle', 'shots', 'n'] as const;
  return keys.filter((key) => a[key] !== b[key]).map((key) => `suite ${a.suite}: ${key} differs (${a[key]} vs ${b[key]})`);
}
