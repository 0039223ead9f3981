/** The run report's content, section by section, as blocks for markdown.ts and html.ts. */
import type { Recipe } from '../recipe/index.ts';
import type { MetricsRecord } from '../run/metrics.ts';
import { lastValue, trainingThroughput } from './comparisons.ts';
import type { Block } from './document.ts';
import { evaluationSection, TARGET_LABELS } from './evaluation-sections.ts';
import { formatBytes, formatCount, formatPercent, formatRate, formatSeconds, formatValue } from './format.ts';
import type { RunReport } from './gather.ts';
import { headline } from './headline.ts';
import type { ModelSize } from './model-size.ts';
import { EVAL_TARGETS, type FileEntry } from './run-files.ts';
import type { ChartSeries } from './svg-chart.ts';

export function reportBlocks(report: RunReport): Block[] {
  return [
    { kind: 'heading', level: 1, text: `Run report: ${report.files.name}` },
    { kind: 'paragraph', text: `Run folder: ${report.files.root}` },
    { kind: 'paragraph', text: headline(report), headline: true },
    ...modelsSection(report),
    ...evaluationSection(report),
    ...trainingSection(report),
    ...throughputSection(report),
    ...dataSection(report),
    ...filesSection(report),
    ...recipeSection(report),
  ];
}

function modelsSection({ files: { recipe }, student, teacher }: RunReport): Block[] {
  if (!recipe || !student || !teacher) return [];
  const row = (role: string, reference: string, size: ModelSize) =>
    size.parameters === null
      ? [role, reference, 'unknown', '', size.reason]
      : [role, reference, formatCount(size.parameters), size.trainable === null ? '' : formatCount(size.trainable), size.source];
  const { student: spec } = recipe;
  const studentRef = spec.type === 'lora' ? `LoRA rank ${spec.rank} on ${spec.base}` : spec.type === 'full' ? `all weights of ${spec.base}` : 'trained from scratch';
  const rows = [row('student', studentRef, student)];
  if (recipe.teacher) rows.push(row('teacher', `${recipe.teacher.provider}: ${recipe.teacher.model}`, teacher));
  const blocks: Block[] = [
    { kind: 'heading', level: 2, text: 'Models' },
    { kind: 'table', header: ['role', 'model', 'parameters', 'trained', 'counted from'], rows, numeric: [false, false, true, true, false] },
  ];
  if (student.parameters !== null && teacher.parameters !== null) {
    const ratio = student.parameters / teacher.parameters;
    blocks.push({
      kind: 'paragraph',
      text: `Student / teacher parameters: ${formatPercent(ratio)} (the teacher has ${(1 / ratio).toFixed(1)}× as many).`,
    });
  }
  return blocks;
}

function trainingSection({ files, charts }: RunReport): Block[] {
  const facts = [...trainingFacts('student', files.metrics, files.recipe)];
  if (files.ceBaselineMetrics) facts.push(...trainingFacts('CE-only student', files.ceBaselineMetrics, files.recipe));
  return [
    { kind: 'heading', level: 2, text: 'Training' },
    facts.length > 0 ? { kind: 'list', items: facts } : { kind: 'paragraph', text: 'No training step was logged yet (metrics.jsonl).' },
    ...charts.map(({ id, chart }): Block => ({ kind: 'chart', id, chart, caption: chart.series.map(seriesCaption) })),
  ];
}

function trainingFacts(who: string, metrics: readonly MetricsRecord[], recipe: Recipe | null): string[] {
  const last = metrics.at(-1);
  if (!last) return [];
  const planned = !recipe ? ' of ?' : recipe.train.maxSteps !== null ? ` of ${formatCount(recipe.train.maxSteps)}` : '';
  const epochs = recipe?.train.epochs ? ` (train.epochs ${recipe.train.epochs})` : '';
  const facts = [`${who}: ${formatCount(last.step)}${planned} steps logged${epochs}`];
  const loss = lastValue(metrics, 'loss');
  const validation = lastValue(metrics, 'val_loss');
  if (loss) facts.push(`${who}: final train loss ${formatValue(loss.value)} (step ${formatCount(loss.step)})`);
  if (validation) facts.push(`${who}: last validation loss ${formatValue(validation.value)} (step ${formatCount(validation.step)})`);
  const preference = preferenceFact(metrics);
  if (preference) facts.push(`${who}: ${preference}`);
  return facts;
}

/** DPO's held-out reward accuracy with its standard error (a binomial share of the pairs), and the rewards behind it. */
function preferenceFact(metrics: readonly MetricsRecord[]): string | null {
  const accuracy = lastValue(metrics, 'val_rewards/accuracies');
  const record = accuracy && metrics.find((r) => r.step === accuracy.step);
  const pairs = record?.val_pairs;
  if (!accuracy || !record || typeof pairs !== 'number') return null;
  const stderr = Math.sqrt((accuracy.value * (1 - accuracy.value)) / pairs);
  const reward = (key: string) => formatValue(record[key] as number);
  return (
    `the chosen answer has the higher reward in ${formatPercent(accuracy.value)} ± ${formatPercent(stderr)} of ${formatCount(pairs)} held-out pairs (step ${formatCount(accuracy.step)}; ` +
    `rewards: chosen ${reward('val_rewards/chosen')}, rejected ${reward('val_rewards/rejected')}, margin ${reward('val_rewards/margins')})`
  );
}

/** First, last and lowest value of a series, from its finite points. */
function seriesCaption(series: ChartSeries): string {
  const finite = series.points.filter((p) => Number.isFinite(p.y));
  if (finite.length === 0) return `${series.name}: no finite value`;
  const first = finite[0];
  const last = finite.at(-1)!;
  const lowest = finite.reduce((min, p) => (p.y < min.y ? p : min));
  const gaps = series.points.length - finite.length;
  const at = (p: { x: number; y: number }) => `${formatValue(p.y)} at step ${formatCount(p.x)}`;
  return `${series.name}: ${at(first)} → ${at(last)}; lowest ${at(lowest)}${gaps > 0 ? `; ${gaps} non-finite values left as gaps` : ''}`;
}

function throughputSection({ files }: RunReport): Block[] {
  const items: string[] = [];
  const training = [['student', trainingThroughput(files.metrics)], ['CE-only student', files.ceBaselineMetrics && trainingThroughput(files.ceBaselineMetrics)]] as const;
  for (const [who, rate] of training) {
    if (!rate) continue;
    const wall = rate.elapsed === null ? '' : `; ${formatSeconds(rate.elapsed)} wall-clock at the last step, validation, evaluations and checkpoints included`;
    items.push(`Training (${who}): median ${formatRate(rate.median)} tokens/s over ${formatCount(rate.steps)} steps (min ${formatRate(rate.min)}, max ${formatRate(rate.max)})${wall}.`);
  }
  if (files.data) items.push(`Data generation: ${formatSeconds(files.data.seconds)} for ${formatCount(files.data.requests)} teacher requests (${formatCount(files.data.cached)} answered from the cache).`);
  const rows = EVAL_TARGETS.flatMap((target) =>
    (files.evals[target] ?? []).map((r) => [TARGET_LABELS[target], r.suite, formatCount(r.n), formatCount(r.cached), formatSeconds(r.seconds), formatRate(r.documentsPerSecond)]),
  );
  if (items.length === 0 && rows.length === 0) return [];
  const blocks: Block[] = [{ kind: 'heading', level: 2, text: 'Throughput' }];
  if (items.length > 0) blocks.push({ kind: 'list', items });
  if (rows.length > 0) {
    blocks.push(
      { kind: 'paragraph', text: 'Evaluation speed; answers from the answer cache cost almost nothing, so documents/s counts them as done.' },
      { kind: 'table', header: ['model', 'suite', 'documents', 'from cache', 'time', 'documents/s'], rows, numeric: [false, false, true, true, true, true] },
    );
  }
  return blocks;
}

function dataSection({ files: { data, recipe } }: RunReport): Block[] {
  const heading: Block = { kind: 'heading', level: 2, text: 'Data' };
  if (!data) {
    const files = recipe?.data.train ?? recipe?.data.mix?.map((source) => source.path).join(', ');
    const source = files ? `the recipe trains on ${files}` : 'no data/summary.json';
    return [heading, { kind: 'paragraph', text: `This run generated no data: ${source}.` }];
  }
  const { counts, pairs } = data;
  const requests = data.teacherRequests;
  const rows: [string, string][] = [
    ['mode', data.mode],
    ['teacher', `${data.teacher.provider}: ${data.teacher.model}${data.teacher.digest ? ` (${data.teacher.digest})` : ''}`],
    ['prompts', formatCount(data.prompts)],
    ['teacher requests', formatCount(data.requests)],
    ['answered from the cache', formatCount(data.cached)],
    ['asked in this run', formatCount(data.queried)],
  ];
  if (counts) {
    rows.push(
      ['examples kept', formatCount(data.examples)],
      ['duplicates dropped', formatCount(counts.duplicates)],
      ...Object.entries(counts.dropped).map(([reason, n]): [string, string] => [`dropped: ${reason}`, formatCount(n)]),
      ['kept without soft labels', formatCount(counts.withoutSoftLabels)],
      ['response tokens', formatCount(counts.responseTokens)],
      ['soft labels per token (k)', data.k === 0 ? '0 (text only)' : formatCount(data.k)],
    );
  }
  if (pairs) {
    rows.push(
      ['preference pairs', formatCount(pairs.pairs)],
      ['prompts whose answers did not split', formatCount(pairs.unpaired)],
      ...Object.entries(pairs.dropped).map(([reason, n]): [string, string] => [`answers dropped: ${reason}`, formatCount(n)]),
    );
  }
  if (data.fallback) rows.push(['fallback', data.fallback]);
  if (requests) {
    rows.push(['teacher calls (attempts / retries / failures / timeouts)', [requests.requests, requests.retries, requests.failures, requests.timeouts].map(formatCount).join(' / ')]);
    rows.push(['teacher tokens', formatCount(requests.tokens)]);
  }
  rows.push(['time', formatSeconds(data.seconds)], ['shards', data.shards.length > 0 ? data.shards.join(', ') : 'none']);
  return [heading, { kind: 'table', header: ['', 'value'], rows }];
}

function filesSection({ files }: RunReport): Block[] {
  const blocks: Block[] = [{ kind: 'heading', level: 2, text: 'Files' }];
  if (files.final) {
    const kind = files.final.kind === 'peft' ? 'a PEFT LoRA adapter' : files.final.kind === 'hf' ? 'a Hugging Face model folder' : 'model files';
    blocks.push({ kind: 'paragraph', text: `final/ holds ${kind}:` }, fileTable(files.final.files));
  } else {
    blocks.push({ kind: 'paragraph', text: 'No final/ yet: training has not finished.' });
  }
  if (files.exports.length === 0) {
    blocks.push({ kind: 'paragraph', text: `Nothing exported yet (slm-train export --run ${files.root}).` });
  } else {
    for (const { format, files: exported } of files.exports) blocks.push({ kind: 'paragraph', text: `Export ${format}:` }, fileTable(exported));
  }
  return blocks;
}

function fileTable(files: readonly FileEntry[]): Block {
  return { kind: 'table', header: ['file', 'size'], rows: files.map((file) => [file.path, formatBytes(file.bytes)]), numeric: [false, true] };
}

function recipeSection({ files }: RunReport): Block[] {
  const blocks: Block[] = [{ kind: 'heading', level: 2, text: 'Recipe' }];
  if (files.recipeError) blocks.push({ kind: 'paragraph', text: `recipe.yaml cannot be loaded now (${files.recipeError}); it is shown as the run wrote it.` });
  if (files.recipeText !== null) blocks.push({ kind: 'code', language: 'yaml', text: files.recipeText });
  return blocks;
}
