/**
 * The report as a list of blocks, written once (sections.ts) and rendered twice: to Markdown (markdown.ts)
 * and to self-contained HTML (html.ts). So both files always hold the same words and numbers.
 */
import type { LineChart } from './svg-chart.ts';

export type Block =
  | { kind: 'heading'; level: 1 | 2 | 3; text: string }
  | { kind: 'paragraph'; text: string; headline?: boolean }
  | { kind: 'list'; items: string[] }
  | { kind: 'table'; header: string[]; rows: string[][]; numeric?: boolean[] }
  | { kind: 'code'; language: string; text: string }
  | { kind: 'chart'; id: string; chart: LineChart; caption: string[] };

/** Where report.md finds a chart's SVG, relative to the run folder. */
export function chartFile(id: string): string {
  return `report-charts/${id}.svg`;
}
