/**
 * The report's charts, built from metrics.jsonl (and the CE-only baseline's): losses, the KD and CE parts of
 * the distillation loss, agreement with the teacher, DPO's implicit rewards, and evaluations during training. A chart appears only
 * when its metrics were logged. A series holds the steps that logged its key; a null value (a NaN loss in
 * JSON) stays in as a gap.
 */
import type { MetricsRecord } from '../run/metrics.ts';
import type { ChartPoint, ChartSeries, LineChart } from './svg-chart.ts';

export interface ReportChart {
  /** File name stem of the chart's SVG next to report.md. */
  id: string;
  chart: LineChart;
}

export function runCharts(metrics: readonly MetricsRecord[], ceBaseline: readonly MetricsRecord[] | null): ReportChart[] {
  const baseline = ceBaseline ?? [];
  const evalKeys = [...new Set(metrics.flatMap((r) => Object.keys(r).filter((key) => key.startsWith('eval_'))))].sort();
  const charts: ReportChart[] = [
    {
      id: 'loss',
      chart: lineChart('Loss (each student\'s own objective: KL + CE for the distilled one)', 'loss', [
        series(metrics, 'loss', 'train loss'),
        series(metrics, 'val_loss', 'validation loss'),
        series(baseline, 'loss', 'CE-only student: train loss', true),
        series(baseline, 'val_loss', 'CE-only student: validation loss', true),
      ]),
    },
    {
      id: 'kd-ce',
      chart: lineChart('Parts of the distillation loss', 'loss', [
        series(metrics, 'kd', 'KD (train)'),
        series(metrics, 'ce', 'CE (train)'),
        series(metrics, 'val_kd', 'KD (validation)'),
        series(metrics, 'val_ce', 'CE (validation)'),
        // The CE-only student's validation loss is its CE: the one number comparable across the two.
        series(baseline, 'val_loss', 'CE-only student: CE (validation)', true),
      ]),
    },
    {
      id: 'agreement',
      chart: lineChart('Top-1 agreement with the teacher', 'fraction of tokens', [
        series(metrics, 'top1_agreement', 'train'),
        series(metrics, 'val_top1_agreement', 'validation'),
      ]),
    },
    {
      id: 'rewards',
      chart: lineChart('DPO: implicit rewards, beta * (log p - log p_ref)', 'reward', [
        series(metrics, 'rewards/chosen', 'chosen (train)'),
        series(metrics, 'rewards/rejected', 'rejected (train)'),
        series(metrics, 'val_rewards/chosen', 'chosen (validation)'),
        series(metrics, 'val_rewards/rejected', 'rejected (validation)'),
      ]),
    },
    {
      id: 'reward-accuracy',
      chart: lineChart('DPO: pairs whose chosen answer has the higher reward', 'fraction of pairs', [
        series(metrics, 'rewards/accuracies', 'train'),
        series(metrics, 'val_rewards/accuracies', 'validation'),
      ]),
    },
    {
      id: 'eval-during-training',
      chart: lineChart(
        'Evaluation during training (primary metric, on a subset)',
        'score',
        evalKeys.map((key) => series(metrics, key, key.slice('eval_'.length))),
      ),
    },
  ];
  return charts.filter(({ chart }) => chart.series.length > 0);
}

function lineChart(title: string, yLabel: string, all: ChartSeries[]): LineChart {
  return { title, xLabel: 'step', yLabel, series: all.filter((s) => s.points.length > 0) };
}

function series(records: readonly MetricsRecord[], key: string, name: string, dashed = false): ChartSeries {
  const points: ChartPoint[] = [];
  for (const record of records) {
    const value = record[key];
    if (typeof value === 'number') points.push({ x: record.step, y: value });
    else if (value === null) points.push({ x: record.step, y: Number.NaN });
  }
  return { name, points, ...(dashed && { dashed }) };
}
