/**
 * What a run folder holds, read as it is: any part may be missing (a run still going, a stage not in the
 * recipe), and the report shows what exists. Only JSON that a stage of this project wrote is read here.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { evalDir } from '../eval/evaluate.ts';
import { readEvalResults } from '../eval/report.ts';
import type { SuiteResult } from '../eval/runner.ts';
import { loadRecipe, type Recipe } from '../recipe/index.ts';
import type { GenerateSummary } from '../run/data-summary.ts';
import { runPathsAt } from '../run/layout.ts';
import { readMetrics, type MetricsRecord } from '../run/metrics.ts';
import { SlmError } from '../util/errors.ts';
import { pathExists } from '../util/path-exists.ts';
import { readJsonFile } from '../util/read-json.ts';

/** Who was evaluated; `ce-baseline` is the same student trained with cross-entropy alone. */
export const EVAL_TARGETS = ['student', 'teacher', 'base', 'ce-baseline'] as const;
export type EvalTargetKey = (typeof EVAL_TARGETS)[number];

/** The CE-only baseline's own run files live in this subfolder of the run. */
export const CE_BASELINE_DIR = 'ce-baseline';

export interface FileEntry {
  /** Relative to the run folder. */
  path: string;
  bytes: number;
}

export interface RunFiles {
  root: string;
  name: string;
  /** recipe.yaml as written, and loaded; `recipeError` says why loading failed. */
  recipeText: string | null;
  recipe: Recipe | null;
  recipeError: string | null;
  metrics: MetricsRecord[];
  ceBaselineMetrics: MetricsRecord[] | null;
  data: GenerateSummary | null;
  evals: Partial<Record<EvalTargetKey, SuiteResult[]>>;
  /** final/: a Hugging Face model folder, or a PEFT adapter folder. */
  final: { kind: 'hf' | 'peft' | 'other'; files: FileEntry[] } | null;
  exports: { format: string; files: FileEntry[] }[];
}

export class RunReportError extends SlmError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { code: 'ERR_REPORT', ...options });
  }
}

export async function readRunFiles(runDir: string): Promise<RunFiles> {
  const paths = runPathsAt(runDir);
  if (!(await stat(runDir).catch(() => undefined))?.isDirectory()) throw new RunReportError(`${runDir}: not a folder (expected a run folder, runs/<name>)`);
  const { text: recipeText, recipe, error: recipeError } = await readRecipe(paths.recipe);
  return {
    root: runDir,
    name: recipe?.name ?? basename(runDir),
    recipeText,
    recipe,
    recipeError,
    metrics: (await readMetricsIfAny(paths.metrics)) ?? [],
    ceBaselineMetrics: await readMetricsIfAny(join(runDir, CE_BASELINE_DIR, 'metrics.jsonl')),
    data: (await pathExists(paths.dataSummary)) ? ((await readJson(paths.dataSummary)) as GenerateSummary) : null,
    evals: await readEvals(runDir),
    final: await readFinal(runDir, paths.final),
    exports: await readExports(runDir),
  };
}

async function readMetricsIfAny(path: string): Promise<MetricsRecord[] | null> {
  return (await pathExists(path)) ? readMetrics(path) : null;
}

async function readRecipe(path: string): Promise<{ text: string | null; recipe: Recipe | null; error: string | null }> {
  if (!(await pathExists(path))) return { text: null, recipe: null, error: `${path} does not exist` };
  const text = await readFile(path, 'utf8');
  try {
    return { text, recipe: await loadRecipe(path), error: null };
  } catch (error) {
    // The recipe's files may have moved since the run: the report still shows what the run used.
    return { text, recipe: null, error: (error as Error).message };
  }
}

async function readEvals(runDir: string): Promise<RunFiles['evals']> {
  const evals: RunFiles['evals'] = {};
  for (const target of EVAL_TARGETS) {
    const dir = evalDir(runDir, target === 'ce-baseline' ? 'ce_baseline' : target);
    if (!(await hasJsonFiles(dir))) continue;
    evals[target] = await readEvalResults(dir);
  }
  return evals;
}

async function hasJsonFiles(dir: string): Promise<boolean> {
  const names = await readdir(dir).catch(() => []);
  return names.some((name) => name.endsWith('.json'));
}

async function readFinal(runDir: string, finalDir: string): Promise<RunFiles['final']> {
  if (!(await pathExists(finalDir))) return null;
  const files = await listFiles(runDir, finalDir);
  const names = new Set(files.map((file) => basename(file.path)));
  const kind = names.has('adapter_config.json') ? 'peft' : names.has('config.json') ? 'hf' : 'other';
  return { kind, files };
}

async function readExports(runDir: string): Promise<RunFiles['exports']> {
  const exportDir = join(runDir, 'export');
  const entries = await readdir(exportDir, { withFileTypes: true }).catch(() => []);
  const formats = entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
  return Promise.all(formats.map(async (format) => ({ format, files: await listFiles(runDir, join(exportDir, format)) })));
}

/** Every file under `dir` (recursively), by path relative to the run folder, sorted. */
async function listFiles(runDir: string, dir: string): Promise<FileEntry[]> {
  const files: FileEntry[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await listFiles(runDir, path)));
    else if (entry.isFile()) files.push({ path: relative(runDir, path), bytes: (await stat(path)).size });
  }
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

function readJson(path: string): Promise<unknown> {
  return readJsonFile(path, (_, detail, cause) => new RunReportError(`${path}: ${detail}`, { cause }));
}
