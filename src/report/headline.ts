/**
 * The report's opening paragraph: the student's size against the teacher's, its score against the
 * teacher's (a ratio with its uncertainty), and what distillation changed against CE-only training. It
 * states the numbers whatever they are; the verdict on KD against CE only follows the error bars.
 */
import { differenceEstimate, ratioEstimate, type Estimate } from './comparisons.ts';
import { formatCount, formatMetric, formatPercent, formatPercentEstimate, formatPointsEstimate } from './format.ts';
import type { RunReport } from './gather.ts';

export function headline(report: RunReport): string {
  const scores = report.files.evals.student
    ? [...accuracySentences(report), ...distillationSentences(report), ...baseSentences(report)]
    : ['The student was not evaluated (no results in eval/), so its accuracy is compared with neither the teacher nor CE-only training.'];
  return [sizeSentence(report), ...scores].join(' ');
}

function sizeSentence({ student, teacher, files }: RunReport): string {
  if (!student || !teacher) return 'The recipe could not be loaded, so model sizes are unknown.';
  if (student.parameters === null) return `The student's size is unknown (${student.reason}).`;
  const own = `The student has ${formatCount(student.parameters)} parameters`;
  if (!files.recipe?.teacher) return `${own}; the recipe has no teacher.`;
  if (teacher.parameters === null) return `${own}; the teacher's size is unknown (${teacher.reason}).`;
  return `${own}, ${formatPercent(student.parameters / teacher.parameters)} of the teacher's ${formatCount(teacher.parameters)}.`;
}

function accuracySentences({ vsTeacher, files }: RunReport): string[] {
  if (vsTeacher.length === 0) {
    return [files.evals.teacher ? 'The student and the teacher share no evaluated suite and metric, so there is no accuracy ratio.' : 'The teacher was not evaluated, so there is no accuracy ratio.'];
  }
  const ratios = vsTeacher.map((pair) => ({ pair, ratio: ratioEstimate(pair.student, pair.other) }));
  const sentences = ratios.map(({ pair, ratio }) => {
    const scores = `On ${pair.suite} (${pair.metric}) the student scores ${formatMetric(pair.student)} and the teacher ${formatMetric(pair.other)}`;
    return ratio ? `${scores}: the student reaches ${formatPercentEstimate(ratio)} of the teacher's score.` : `${scores}; with the teacher at 0 there is no ratio.`;
  });
  if (ratios.every(({ ratio }) => ratio === null)) return sentences;
  return [
    ...sentences,
    'Scores are percentages ± one standard error; the uncertainty of a ratio comes from both standard errors by first-order error propagation.',
  ];
}

function distillationSentences({ vsCeBaseline, files }: RunReport): string[] {
  if (vsCeBaseline.length === 0) {
    return [
      files.evals['ce-baseline']
        ? 'The distilled and the CE-only student share no evaluated suite and metric, so they are not compared.'
        : 'No CE-only student was evaluated, so distillation is not compared with training on cross-entropy alone.',
    ];
  }
  return vsCeBaseline.map((pair) => {
    const difference = differenceEstimate(pair.student, pair.other);
    return `On ${pair.suite}, the distilled student differs from the same student trained with CE alone (${formatMetric(pair.other)}) by ${formatPointsEstimate(difference)}: ${verdict(difference)}.`;
  });
}

/** What training changed against the model it started from, when that base was evaluated too. */
function baseSentences({ vsBase }: RunReport): string[] {
  return vsBase.map((pair) => {
    const difference = differenceEstimate(pair.student, pair.other);
    return `On ${pair.suite}, the trained student differs from its base (${formatMetric(pair.other)}) by ${formatPointsEstimate(difference)}: ${verdict(difference, { ahead: 'better', behind: 'worse' })}.`;
  });
}

/** Two combined standard errors: about a 95% interval for a difference of independent means. */
export function verdict({ value, stderr }: Estimate, sides = { ahead: 'KD is ahead', behind: 'KD is behind' }): string {
  if (Math.abs(value) <= 2 * stderr) return 'within two combined standard errors, so this run does not tell them apart';
  return `${value > 0 ? sides.ahead : sides.behind} by more than two combined standard errors`;
}
