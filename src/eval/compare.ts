/**
 * Two sets of evaluation results side by side, and the gate a nightly job runs: B regresses when a
 * suite's primary metric drops below A's by more than the threshold, either an absolute drop
 * (`maxDrop`, as a fraction: 0.02 is two points) or a number of combined standard errors
 * (`maxDropStderr`: K * sqrt(se_A^2 + se_B^2)).
 */
import type { MetricValue, SuiteResult } from './runner.ts';

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
  a: MetricValue;
  b: MetricValue;
  /** b - a. */
  delta: number;
  /** The largest drop allowed (primary metrics only). */
  allowedDrop: number | null;
  regressed: boolean;
}

export interface Comparison {
  rows: ComparisonRow[];
  regressed: boolean;
  /** Suites present on one side only, and settings that differ (so the numbers may not be comparable). */
  warnings: string[];
}

export function compareResults(a: readonly SuiteResult[], b: readonly SuiteResult[], gate: Gate = DEFAULT_GATE): Comparison {
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
      const allowedDrop = primary ? allowedDropFor(valueA, valueB, gate) : null;
      const delta = valueB.value - valueA.value;
      rows.push({ suite: left.suite, metric, primary, a: valueA, b: valueB, delta, allowedDrop, regressed: allowedDrop !== null && -delta > allowedDrop });
    }
  }
  for (const right of b) if (!a.some((left) => left.suite === right.suite)) warnings.push(`suite ${right.suite} is in B only`);
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
