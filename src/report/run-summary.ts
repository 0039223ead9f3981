/** One line per run folder, for `slm-train runs`: what trained, how far, how well, and where its report is. */
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SlmError } from '../util/errors.ts';
import { pathExists } from '../util/path-exists.ts';
import { lastValue } from './comparisons.ts';
import { studentSize } from './model-size.ts';
import { readRunFiles } from './run-files.ts';

export interface RunSummary {
  name: string;
  dir: string;
  student: { kind: 'scratch' | 'lora' | 'full'; parameters: number | null } | null;
  steps: { done: number; max: number | null };
  finalLoss: number | null;
  validationLoss: number | null;
  /** The student's primary metric per suite (fractions, as in the eval JSON). */
  suites: { suite: string; metric: string; value: number; stderr: number; n: number }[];
  final: boolean;
  /** report.html, else report.md, when written. */
  report: string | null;
  /** Why the folder could not be read in full (a recipe that no longer loads, a corrupt file). */
  problem: string | null;
}

/** Every run folder under `dir` (one holding recipe.yaml or metrics.jsonl), by name. */
export async function listRuns(dir: string): Promise<RunSummary[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    throw new SlmError(`${dir}: cannot list runs (${error.code === 'ENOENT' ? 'no such folder' : error.message})`, { code: 'ERR_RUNS' });
  });
  const candidates = entries.filter((entry) => entry.isDirectory() && !entry.name.startsWith('.')).map((entry) => join(dir, entry.name));
  const runs: string[] = [];
  for (const candidate of candidates) {
    if ((await pathExists(join(candidate, 'recipe.yaml'))) || (await pathExists(join(candidate, 'metrics.jsonl')))) runs.push(candidate);
  }
  return Promise.all(runs.sort().map(summarizeRun));
}

export async function summarizeRun(runDir: string): Promise<RunSummary> {
  const summary = await readSummary(runDir).catch((error: Error): RunSummary => ({ ...emptySummary(runDir), problem: error.message }));
  summary.report = await reportPath(runDir);
  return summary;
}

async function readSummary(runDir: string): Promise<RunSummary> {
  const files = await readRunFiles(runDir);
  const { recipe, metrics } = files;
  const size = recipe && (await studentSize(recipe, runDir));
  return {
    ...emptySummary(runDir),
    name: files.name,
    student: recipe && { kind: recipe.student.type, parameters: size?.parameters ?? null },
    steps: { done: metrics.at(-1)?.step ?? 0, max: recipe?.train.maxSteps ?? null },
    finalLoss: lastValue(metrics, 'loss')?.value ?? null,
    validationLoss: lastValue(metrics, 'val_loss')?.value ?? null,
    suites: (files.evals.student ?? []).flatMap((result) => {
      const primary = result.metrics[result.primaryMetric];
      return primary ? [{ suite: result.suite, metric: result.primaryMetric, ...primary }] : [];
    }),
    final: files.final !== null,
    problem: files.recipeError,
  };
}

function emptySummary(runDir: string): RunSummary {
  return { name: basename(runDir), dir: runDir, student: null, steps: { done: 0, max: null }, finalLoss: null, validationLoss: null, suites: [], final: false, report: null, problem: null };
}

async function reportPath(runDir: string): Promise<string | null> {
  for (const name of ['report.html', 'report.md']) {
    if (await pathExists(join(runDir, name))) return join(runDir, name);
  }
  return null;
}
