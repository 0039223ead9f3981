/**
 * A line chart as an SVG string, with no DOM and no library: axes with "nice" ticks (1, 2, 5 x 10^k), axis
 * labels, a legend, several series, and gaps where a value is not finite (a diverged step). Each series is
 * one <path> (a new `M` after every gap) with `data-series` naming it; series with few points, and points
 * standing alone between gaps, also get circle markers so they stay visible.
 */
export interface ChartPoint {
  x: number;
  /** NaN (or any non-finite value) leaves a gap. */
  y: number;
}

export interface ChartSeries {
  name: string;
  points: ChartPoint[];
  dashed?: boolean;
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
}

export interface SvgOptions {
  width?: number;
  height?: number;
  /** A file of its own needs the SVG namespace; inline in HTML it is implied. */
  standalone?: boolean;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const FONT_SIZE = 12;
/** Rough width of a character at FONT_SIZE in a sans-serif font, for laying out the legend. */
const CHAR_WIDTH = 6.6;
const MARGIN = { top: 30, right: 20, left: 64, axisBelow: 42 };
const LEGEND_ROW = 18;
const MARKERS_UP_TO = 40;

export function lineChartSvg(chart: LineChart, options: SvgOptions = {}): string {
  const width = options.width ?? 720;
  const height = options.height ?? 360;
  const legend = legendLayout(chart.series, width - MARGIN.left - MARGIN.right);
  const plot = {
    left: MARGIN.left,
    top: MARGIN.top,
    width: width - MARGIN.left - MARGIN.right,
    height: height - MARGIN.top - MARGIN.axisBelow - legend.height - 6,
  };
  const finite = chart.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y) && Number.isFinite(p.x));
  const namespace = options.standalone ? ' xmlns="http://www.w3.org/2000/svg"' : '';
  const parts = [
    `<svg${namespace} width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" font-family="sans-serif" font-size="${FONT_SIZE}">`,
    `<title>${escapeXml(chart.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-weight="bold">${escapeXml(chart.title)}</text>`,
  ];
  if (finite.length === 0) {
    parts.push(`<text x="${width / 2}" y="${plot.top + plot.height / 2}" text-anchor="middle" fill="#666666">no data</text>`);
  } else {
    const x = scale(niceTicks(...extent(finite.map((p) => p.x)), { integer: true }), plot.left, plot.left + plot.width);
    const y = scale(niceTicks(...extent(finite.map((p) => p.y))), plot.top + plot.height, plot.top);
    parts.push(...axes(chart, plot, x, y));
    chart.series.forEach((series, i) => parts.push(seriesSvg(series, PALETTE[i % PALETTE.length], x.map, y.map)));
  }
  parts.push(...legendSvg(chart.series, legend.items, plot.top + plot.height + MARGIN.axisBelow + 4), '</svg>');
  return parts.join('\n');
}

/** [min, max] without spreading the values into arguments (a long run logs more steps than a call takes). */
function extent(values: readonly number[]): [number, number] {
  return values.reduce<[number, number]>(([lo, hi], v) => [Math.min(lo, v), Math.max(hi, v)], [Infinity, -Infinity]);
}

interface Ticks {
  values: number[];
  decimals: number;
}

/** Round tick values (steps of 1, 2 or 5 times a power of ten) covering [min, max]. */
export function niceTicks(min: number, max: number, { target = 5, integer = false } = {}): Ticks {
  if (min === max) {
    const pad = Math.abs(min) * 0.1 || 1;
    [min, max] = [min - pad, max + pad];
  }
  const raw = (max - min) / target;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw * (1 - 1e-9))!;
  if (integer) step = Math.max(1, Math.round(step));
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const first = Math.floor(min / step + 1e-9);
  const last = Math.ceil(max / step - 1e-9);
  const values = Array.from({ length: last - first + 1 }, (_, i) => Number(((first + i) * step).toFixed(decimals)));
  return { values, decimals };
}

interface Scale {
  ticks: Ticks;
  map(value: number): number;
}

/** Maps the ticks' range onto [from, to] in pixels. */
function scale(ticks: Ticks, from: number, to: number): Scale {
  const lo = ticks.values[0];
  const hi = ticks.values.at(-1)!;
  return { ticks, map: (value) => from + ((value - lo) / (hi - lo)) * (to - from) };
}

function axes(chart: LineChart, plot: { left: number; top: number; width: number; height: number }, x: Scale, y: Scale): string[] {
  const bottom = plot.top + plot.height;
  const right = plot.left + plot.width;
  const parts: string[] = [];
  for (const value of y.ticks.values) {
    const py = round(y.map(value));
    parts.push(
      `<line x1="${plot.left}" y1="${py}" x2="${right}" y2="${py}" stroke="#e5e5e5"/>`,
      `<text x="${plot.left - 6}" y="${py + 4}" text-anchor="end">${value.toFixed(y.ticks.decimals)}</text>`,
    );
  }
  for (const value of x.ticks.values) {
    const px = round(x.map(value));
    parts.push(
      `<line x1="${px}" y1="${bottom}" x2="${px}" y2="${bottom + 5}" stroke="#333333"/>`,
      `<text x="${px}" y="${bottom + 18}" text-anchor="middle">${value.toFixed(x.ticks.decimals)}</text>`,
    );
  }
  const middleY = plot.top + plot.height / 2;
  parts.push(
    `<path d="M${plot.left},${plot.top} L${plot.left},${bottom} L${right},${bottom}" fill="none" stroke="#333333"/>`,
    `<text x="${plot.left + plot.width / 2}" y="${bottom + 36}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`,
    `<text x="16" y="${middleY}" text-anchor="middle" transform="rotate(-90 16 ${middleY})">${escapeXml(chart.yLabel)}</text>`,
  );
  return parts;
}

function seriesSvg(series: ChartSeries, color: string, px: (x: number) => number, py: (y: number) => number): string {
  const segments = finiteRuns(series.points);
  const d = segments.map((run) => run.map((p, i) => `${i === 0 ? 'M' : 'L'}${round(px(p.x))},${round(py(p.y))}`).join(' ')).join(' ');
  const dash = series.dashed ? ' stroke-dasharray="6 4"' : '';
  const pointCount = segments.reduce((sum, run) => sum + run.length, 0);
  const marked = pointCount <= MARKERS_UP_TO ? segments.flat() : segments.filter((run) => run.length === 1).flat();
  const markers = marked.map((p) => `<circle cx="${round(px(p.x))}" cy="${round(py(p.y))}" r="2.5" fill="${color}"/>`);
  const name = escapeXml(series.name);
  return [`<path data-series="${name}" d="${d}" fill="none" stroke="${color}" stroke-width="1.6"${dash}/>`, ...markers].join('\n');
}

/** The stretches of consecutive finite points. */
function finiteRuns(points: readonly ChartPoint[]): ChartPoint[][] {
  const runs: ChartPoint[][] = [];
  let current: ChartPoint[] = [];
  for (const point of points) {
    if (Number.isFinite(point.x) && Number.isFinite(point.y)) {
      current.push(point);
    } else if (current.length > 0) {
      runs.push(current);
      current = [];
    }
  }
  if (current.length > 0) runs.push(current);
  return runs;
}

interface LegendItem {
  x: number;
  row: number;
}

/** Legend entries left to right, wrapping to a new row when the width is used up. */
function legendLayout(series: readonly ChartSeries[], width: number): { items: LegendItem[]; height: number } {
  const items: LegendItem[] = [];
  let x = 0;
  let row = 0;
  for (const s of series) {
    const itemWidth = 30 + s.name.length * CHAR_WIDTH + 18;
    if (x > 0 && x + itemWidth > width) {
      row++;
      x = 0;
    }
    items.push({ x, row });
    x += itemWidth;
  }
  return { items, height: series.length === 0 ? 0 : (row + 1) * LEGEND_ROW };
}

function legendSvg(series: readonly ChartSeries[], items: readonly LegendItem[], top: number): string[] {
  return series.flatMap((s, i) => {
    const x = MARGIN.left + items[i].x;
    const y = top + items[i].row * LEGEND_ROW + LEGEND_ROW / 2;
    const color = PALETTE[i % PALETTE.length];
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    return [
      `<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${color}" stroke-width="2"${dash}/>`,
      `<text x="${x + 30}" y="${y + 4}">${escapeXml(s.name)}</text>`,
    ];
  });
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
