import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lineChartSvg, niceTicks, type LineChart } from '../../src/report/svg-chart.ts';

function chart(series: LineChart['series']): LineChart {
  return { title: 'Loss', xLabel: 'step', yLabel: 'loss', series };
}

/** The coordinates of each series' path, per sub-path. */
function subPaths(svg: string, name: string): [number, number][][] {
  const d = new RegExp(`<path data-series="${name}" d="([^"]*)"`).exec(svg)![1];
  return d
    .split('M')
    .filter(Boolean)
    .map((part) => part.trim().split(/\s*L/).map((xy) => xy.split(',').map(Number) as [number, number]));
}

describe('niceTicks', () => {
  it('covers the range with steps of 1, 2 or 5 times a power of ten', () => {
    fc.assert(
      fc.property(fc.double({ min: -1e4, max: 1e4, noNaN: true }), fc.double({ min: 1e-3, max: 1e4, noNaN: true }), (low, span) => {
        const { values } = niceTicks(low, low + span);
        const step = values[1] - values[0];
        const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
        expect([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6)).toBe(true);
        // within float noise (a billionth of a step) of the data
        expect(values[0]).toBeLessThanOrEqual(low + 1e-9 * step);
        expect(values.at(-1)!).toBeGreaterThanOrEqual(low + span - 1e-9 * step);
        expect(values.length).toBeLessThanOrEqual(12);
      }),
      { seed: 11, numRuns: 300 },
    );
  });

  it('gives whole steps on an integer axis and pads a single value', () => {
    expect(niceTicks(1, 3, { integer: true }).values).toEqual([1, 2, 3]);
    expect(niceTicks(0, 300, { integer: true }).values).toEqual([0, 100, 200, 300]);
    expect(niceTicks(5, 5, { integer: true }).values).toEqual([4, 5, 6]);
    expect(niceTicks(0.3, 0.75)).toEqual({ values: [0.3, 0.4, 0.5, 0.6, 0.7, 0.8], decimals: 1 });
  });
});

describe('lineChartSvg', () => {
  it('draws a path per series with one point per value, higher values higher up', () => {
    const ys = [3, 2.5, 2.2, 2, 1.9];
    const svg = lineChartSvg(chart([{ name: 'train loss', points: ys.map((y, i) => ({ x: i + 1, y })) }]));
    const [points] = subPaths(svg, 'train loss');
    expect(points).toHaveLength(ys.length);
    for (let i = 1; i < points.length; i++) {
      expect(points[i][0]).toBeGreaterThan(points[i - 1][0]);
      expect(points[i][1]).toBeGreaterThan(points[i - 1][1]);
    }
    for (const [x, y] of points) {
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThanOrEqual(720);
      expect(y).toBeGreaterThanOrEqual(0);
      expect(y).toBeLessThanOrEqual(360);
    }
  });

  it('places points linearly between the tick at the bottom and the tick at the top', () => {
    // y ticks 0..1 by 0.2, x ticks 0..10 by 2: both ends of the data sit on ticks
    const svg = lineChartSvg(chart([{ name: 's', points: [{ x: 0, y: 0 }, { x: 5, y: 0.5 }, { x: 10, y: 1 }] }]));
    const [[first, middle, last]] = subPaths(svg, 's');
    expect(middle[0]).toBeCloseTo((first[0] + last[0]) / 2, 1);
    expect(middle[1]).toBeCloseTo((first[1] + last[1]) / 2, 1);
    expect(svg).toContain('>0.0</text>');
    expect(svg).toContain('>1.0</text>');
  });

  it('leaves a gap at non-finite values and marks points that stand alone', () => {
    const ys = Array.from({ length: 60 }, (_, i) => (i === 20 || i === 22 ? Number.NaN : 10 - i / 10));
    const svg = lineChartSvg(chart([{ name: 'loss', points: ys.map((y, i) => ({ x: i, y })) }]));
    const runs = subPaths(svg, 'loss');
    expect(runs.map((run) => run.length)).toEqual([20, 1, 37]);
    // 58 points: too many for markers, except the one alone between the gaps
    expect(svg.match(/<circle/g)).toHaveLength(1);
    expect(svg).not.toContain('NaN');
  });

  it('marks every point of a short series, such as validation every N steps', () => {
    const svg = lineChartSvg(chart([{ name: 'validation loss', points: [10, 20, 30].map((x) => ({ x, y: 1 / x })) }]));
    expect(svg.match(/<circle/g)).toHaveLength(3);
  });

  it('has a legend entry per series, dashed where the series is, with names escaped', () => {
    const svg = lineChartSvg(
      chart([
        { name: 'KD <student> & "co"', points: [{ x: 1, y: 1 }, { x: 2, y: 0.5 }] },
        { name: 'CE-only', points: [{ x: 1, y: 1.2 }, { x: 2, y: 0.7 }], dashed: true },
      ]),
    );
    expect(svg).toContain('data-series="KD &lt;student&gt; &amp; &quot;co&quot;"');
    expect(svg).toContain('>KD &lt;student&gt; &amp; &quot;co&quot;</text>');
    expect(svg).toContain('>CE-only</text>');
    expect(svg.match(/stroke-dasharray/g)).toHaveLength(2); // the dashed path and its legend line
    expect(svg).toContain('>step</text>');
    expect(svg).toContain('>loss</text>');
  });

  it('declares the SVG namespace only for a standalone file', () => {
    const one = chart([{ name: 's', points: [{ x: 1, y: 1 }] }]);
    expect(lineChartSvg(one, { standalone: true })).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" /);
    expect(lineChartSvg(one)).not.toContain('xmlns');
  });

  it('draws a long run: more points than a function call takes as arguments', () => {
    const points = Array.from({ length: 200_000 }, (_, i) => ({ x: i + 1, y: 1 / (i + 1) }));
    const [run] = subPaths(lineChartSvg(chart([{ name: 'loss', points }])), 'loss');
    expect(run).toHaveLength(points.length);
  });

  it('says so when there is nothing to draw', () => {
    const svg = lineChartSvg(chart([{ name: 's', points: [{ x: 1, y: Number.NaN }] }]));
    expect(svg).toContain('>no data</text>');
    expect(svg).not.toContain('<path data-series');
  });
});
