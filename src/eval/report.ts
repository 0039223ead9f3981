/**
 * Evaluation results on disk, in one folder per evaluated model:
 *
 *   <suite>.json            lm-evaluation-harness's results layout (harness-layout.ts), with our record
 *                           (metrics per filter, groups, prompt style, shots, seed, digest) under `slm-train`
 *   <suite>.samples.jsonl   the harness's per-sample records: one per document and filter
 *   summary.md              a Markdown table of every suite in the folder
 *
 * and reading them back (from such a folder, a run folder's eval/, or one .json) for comparisons.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.ts';
import { pathExists } from '../util/path-exists.ts';
import { readJsonFile } from '../util/read-json.ts';
import { SlmError } from '../util/errors.ts';
import { OWN_RECORD_KEY, harnessResults, harnessSampleLines } from './harness-layout.ts';
import type { MetricValue, SampleRecord, SuiteResult } from './runner.ts';

const SAMPLES_SUFFIX = '.samples.jsonl';

export async function writeSuiteResult(dir: string, result: SuiteResult, samples: readonly SampleRecord[]): Promise<string> {
  const file = join(dir, `${result.suite}.json`);
  await writeFileAtomic(join(dir, `${result.suite}${SAMPLES_SUFFIX}`), harnessSampleLines(samples).map((line) => JSON.stringify(line)).join('\n') + '\n');
  await writeJsonAtomic(file, harnessResults(result, samples));
  await writeFileAtomic(join(dir, 'summary.md'), summaryMarkdown(await readEvalResults(dir)));
  return file;
}

/** Every suite result under `path`: a results .json, a folder of them, or a run folder (its eval/). */
export async function readEvalResults(path: string): Promise<SuiteResult[]> {
  const stats = await stat(path).catch(() => undefined);
  if (!stats) throw new SlmError(`${path}: not found (expected a run folder, an eval folder or a <suite>.json)`, { code: 'ERR_EVAL' });
  if (stats.isFile()) return [await readResult(path)];
  const evalDir = (await pathExists(join(path, 'eval'))) ? join(path, 'eval') : path;
  const files = (await readdir(evalDir)).filter((name) => name.endsWith('.json')).sort();
  const results = await Promise.all(files.map((name) => readResult(join(evalDir, name))));
  if (results.length === 0) throw new SlmError(`${evalDir}: holds no evaluation results (<suite>.json)`, { code: 'ERR_EVAL' });
  return results;
}

/** Our record in a harness-layout file, or a whole file of the layout written before it. */
async function readResult(file: string): Promise<SuiteResult> {
  const json = (await readJsonFile(file, (_, detail, cause) => new SlmError(`${file}: not a JSON evaluation result (${detail})`, { code: 'ERR_EVAL', cause }))) as Record<string, unknown>;
  const value = (json?.[OWN_RECORD_KEY] ?? json) as Partial<SuiteResult>;
  if (typeof value.suite !== 'string' || typeof value.metrics !== 'object' || typeof value.primaryMetric !== 'string') {
    throw new SlmError(`${file}: not an evaluation result of slm-train (expected key "${OWN_RECORD_KEY}" with suite, primaryMetric and metrics)`, { code: 'ERR_EVAL' });
  }
  return value as SuiteResult;
}

export function formatMetric({ value, stderr }: MetricValue): string {
  return `${(value * 100).toFixed(2)} ± ${(stderr * 100).toFixed(2)}`;
}

export function summaryMarkdown(results: readonly SuiteResult[]): string {
  const lines = [
    `# Evaluation of ${results[0]?.model.name ?? 'a model'}`,
    '',
    `Model digest: \`${results[0]?.model.digest ?? ''}\`. Values are percentages ± standard error (sample std / sqrt(n)).`,
    '',
    '| suite | version | prompt | shots | metric | value | n |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const result of results) {
    for (const [name, metric] of Object.entries(result.metrics)) {
      lines.push(`| ${result.suite} | ${result.version} | ${result.promptStyle} | ${result.shots} | ${name} | ${formatMetric(metric)} | ${metric.n} |`);
    }
    for (const [kind, metrics] of Object.entries(result.macro)) {
      for (const [name, metric] of Object.entries(metrics)) {
        lines.push(`| ${result.suite} | ${result.version} | ${result.promptStyle} | ${result.shots} | ${name} (macro over ${kind}) | ${formatMetric(metric)} | ${metric.n} |`);
      }
    }
  }
  return `${lines.join('\n')}\n`;
}
