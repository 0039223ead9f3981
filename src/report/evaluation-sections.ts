/** The report's evaluation part: every score of every model, then the student against the teacher and the CE-only student. */
import type { SuiteResult } from '../eval/runner.ts';
import { differenceEstimate, ratioEstimate, type SuitePair } from './comparisons.ts';
import type { Block } from './document.ts';
import { formatCount, formatMetric, formatPercentEstimate, formatPointsEstimate } from './format.ts';
import type { RunReport } from './gather.ts';
import { verdict } from './headline.ts';
import { EVAL_TARGETS, type EvalTargetKey } from './run-files.ts';

export const TARGET_LABELS: Record<EvalTargetKey, string> = {
  student: 'student',
  teacher: 'teacher',
  base: 'LoRA base (untrained)',
  'ce-baseline': 'CE-only student',
};

export function evaluationSection(report: RunReport): Block[] {
  const targets = EVAL_TARGETS.filter((target) => report.files.evals[target]);
  if (targets.length === 0) return [{ kind: 'heading', level: 2, text: 'Evaluation' }, { kind: 'paragraph', text: 'No evaluation results in this run (eval/).' }];
  return [
    { kind: 'heading', level: 2, text: 'Evaluation' },
    { kind: 'paragraph', text: 'Values are percentages ± one standard error (sample std / sqrt(n)); n is the number of documents (or groups, for macro averages).' },
    {
      kind: 'table',
      header: ['model', 'suite', 'prompt', 'shots', 'metric', 'primary', 'value', 'n'],
      rows: targets.flatMap((target) => report.files.evals[target]!.flatMap((result) => resultRows(TARGET_LABELS[target], result))),
      numeric: [false, false, false, true, false, false, true, true],
    },
    ...teacherComparison(report.vsTeacher),
    ...ceComparison(report.vsCeBaseline),
  ];
}

function resultRows(label: string, result: SuiteResult): string[][] {
  const row = (metric: string, name: string, value: SuiteResult['metrics'][string]) => [
    label,
    result.suite,
    result.promptStyle,
    String(result.shots),
    name,
    metric === result.primaryMetric ? 'yes' : '',
    formatMetric(value),
    formatCount(value.n),
  ];
  const macro = Object.entries(result.macro ?? {}).flatMap(([kind, metrics]) =>
    Object.entries(metrics).map(([metric, value]) => row('', `${metric} (macro over ${kind})`, value)),
  );
  return [...Object.entries(result.metrics).map(([metric, value]) => row(metric, metric, value)), ...macro];
}

function teacherComparison(pairs: readonly SuitePair[]): Block[] {
  if (pairs.length === 0) return [];
  return [
    { kind: 'heading', level: 3, text: 'Student against teacher' },
    {
      kind: 'paragraph',
      text:
        "The ratio is the student's primary metric divided by the teacher's. Its uncertainty comes from the two standard errors by first-order error propagation: se(r)² = (se_s / t)² + (s · se_t / t²)², treating the two evaluations as independent.",
    },
    {
      kind: 'table',
      header: ['suite', 'metric', 'student', 'teacher', 'student / teacher', 'settings that differ'],
      rows: pairs.map((pair) => {
        const ratio = ratioEstimate(pair.student, pair.other);
        return [pair.suite, pair.metric, formatMetric(pair.student), formatMetric(pair.other), ratio ? formatPercentEstimate(ratio) : 'n/a (teacher at 0)', pair.differences.join('; ')];
      }),
      numeric: [false, false, true, true, true, false],
    },
  ];
}

function ceComparison(pairs: readonly SuitePair[]): Block[] {
  if (pairs.length === 0) return [];
  return [
    { kind: 'heading', level: 3, text: 'Distilled student against the CE-only student' },
    {
      kind: 'paragraph',
      text:
        'The same student trained on the same data with cross-entropy alone. The difference is KD minus CE in percentage points, ± the combined standard error sqrt(se_kd² + se_ce²). Both score the same documents, so their errors are positively correlated and this combined error is, if anything, too large.',
    },
    {
      kind: 'table',
      header: ['suite', 'metric', 'KD student', 'CE-only student', 'KD − CE', 'verdict', 'settings that differ'],
      rows: pairs.map((pair) => {
        const difference = differenceEstimate(pair.student, pair.other);
        return [pair.suite, pair.metric, formatMetric(pair.student), formatMetric(pair.other), formatPointsEstimate(difference), verdict(difference), pair.differences.join('; ')];
      }),
      numeric: [false, false, true, true, true, false, false],
    },
  ];
}
