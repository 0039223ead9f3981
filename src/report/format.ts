/**
 * How the run report writes numbers, in one place so report.md, report.html and `slm-train runs` agree.
 * Scores (fractions 0..1) are shown as percentages with two decimals, as the evaluation summaries do.
 */
export { formatMetric } from '../eval/report.ts';

/** 1234567 -> `1,234,567`. */
export function formatCount(n: number): string {
  return n.toLocaleString('en');
}

/** A fraction as a percentage: 0.1234 -> `12.34%`. */
export function formatPercent(fraction: number): string {
  return `${(fraction * 100).toFixed(2)}%`;
}

/** A difference of scores in percentage points, with its sign: 0.02 -> `+2.00`. */
export function formatPoints(delta: number): string {
  const text = (delta * 100).toFixed(2);
  return delta > 0 ? `+${text}` : text;
}

/** A loss or another logged value: four decimals. */
export function formatValue(value: number): string {
  return Number.isFinite(value) ? value.toFixed(4) : String(value);
}

export function formatSeconds(seconds: number): string {
  return `${seconds.toFixed(1)} s`;
}

/** Exact bytes, then a binary-unit size for reading: `1,536 bytes (1.5 KiB)`. */
export function formatBytes(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const exact = `${formatCount(bytes)} bytes`;
  return unit === -1 ? exact : `${exact} (${value.toFixed(1)} ${units[unit]})`;
}

/** A ratio with its standard error, as percentages: `80.00% ± 5.10%`. */
export function formatPercentEstimate({ value, stderr }: { value: number; stderr: number }): string {
  return `${formatPercent(value)} ± ${formatPercent(stderr)}`;
}

/** A difference of scores with its standard error, in percentage points: `+2.00 ± 2.83 points`. */
export function formatPointsEstimate({ value, stderr }: { value: number; stderr: number }): string {
  return `${formatPoints(value)} ± ${(stderr * 100).toFixed(2)} points`;
}

/** Tokens or documents per second. */
export function formatRate(perSecond: number): string {
  return perSecond.toFixed(2);
}
