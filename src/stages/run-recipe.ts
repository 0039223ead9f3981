/**
 * Runs a recipe's stages in order against its run folder: generate (when the recipe has a teacher and a
 * `generate` section), train, then eval (when it has an `eval` section). Each stage reads what the earlier ones wrote, so each can be re-run
 * alone (`only`), and an interrupted one resumes.
 */
import { initBackend } from '../backend/index.ts';
import { loadRecipe } from '../recipe/index.ts';
import { pathExists } from '../util/path-exists.ts';
import { SlmError } from '../util/errors.ts';
import { resolvedRecipeYaml, type Recipe } from '../recipe/index.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { ceBaselinePaths, runPaths, type RunPaths } from '../run/layout.ts';
import { RunLock } from './run-lock.ts';
import type { Stage } from './stages.ts';
import { createProgress, type Logger, type TextStream } from '../util/progress.ts';
import { writeRunReport } from '../report/run-report.ts';
import { exportRun, type ExportFormat, type ExportResult } from '../export/export-run.ts';
import { ggufExportType } from '../formats/gguf-quant-mix.ts';
import type { BackendReport } from '../backend/index.ts';
import { evalStage } from './eval-stage.ts';
import type { GenerateSummary } from '../run/data-summary.ts';
import { generateStage, type GenerateStageOptions } from './generate-stage.ts';
import { trainStage, type TrainHooks, type TrainSummary } from './train-stage.ts';


export interface RunRecipeOptions {
  logger: Logger;
  /** Machine-readable output: no progress display. */
  json: boolean;
  /** Where progress is drawn (stderr in the CLI). */
  progressStream: TextStream;
  hooks?: TrainHooks;
  /** Run this stage alone, or these stages (in the recipe's order). */
  only?: Stage | readonly Stage[];
  generate?: GenerateStageOptions;
}

export interface RunRecipeResult {
  /** The run folder. */
  runDir: string;
  backend: string;
  generate?: GenerateSummary;
  train?: TrainSummary;
  /** The same student trained with CE alone (distill.compare_ce). */
  ceBaseline?: TrainSummary;
  eval?: Awaited<ReturnType<typeof evalStage>>;
  exports?: ExportResult[];
  /** report.md and report.html, rewritten after every run. */
  report?: { markdown: string; html: string };
}

export async function runRecipe(recipe: Recipe, options: RunRecipeOptions): Promise<RunRecipeResult> {
  await ensureTeacher(recipe, options);
  const backend = await initBackend(recipe.backend);
  options.logger.info(backend.summary);
  const paths = runPaths(recipe.outputDir, recipe.name);
  const lock = await RunLock.acquire(paths.root);
  const progress = createProgress({ totalSteps: recipe.train.maxSteps ?? 0, stream: options.progressStream, json: options.json });
  const chosen = options.only === undefined ? undefined : ([] as Stage[]).concat(options.only);
  const runs = (stage: Stage) => chosen === undefined || chosen.includes(stage);
  try {
    await writeFileAtomic(paths.recipe, resolvedRecipeYaml(recipe));
    const result: RunRecipeResult = { runDir: paths.root, backend: backend.backend };
    if (recipe.generate && runs('generate')) result.generate = await generateStage(recipe, paths, options.logger, options.generate);
    if (runs('train')) {
      result.train = await trainStage(recipe, paths, backend, progress, options.hooks);
      progress.stop();
      if (recipe.distill?.compareCe) result.ceBaseline = await trainCeBaseline(recipe, paths, backend, options);
    }
    progress.stop();
    if (recipe.eval && runs('eval')) result.eval = await evalStage(recipe, paths, options.logger);
    if (recipe.export && runs('export')) {
      // Export is file work read one tensor at a time, synchronously: a GPU backend, whose reads in Node
      // are asynchronous only, has nothing to add to it.
      if (backend.backend === 'webgpu') await initBackend('wasm');
      result.exports = await exportStage(recipe, paths, options.logger);
    }
    const report = await writeRunReport(paths.root);
    options.logger.info(`report: ${report.reportHtml}`);
    result.report = { markdown: report.reportMd, html: report.reportHtml };
    return result;
  } finally {
    progress.stop();
    await lock.release();
  }
}

/** A local teacher that a prerequisite recipe produces is trained first, when it does not exist yet. */
async function ensureTeacher(recipe: Recipe, options: RunRecipeOptions): Promise<void> {
  const teacher = recipe.teacher;
  if (!teacher?.recipe || (await pathExists(teacher.model))) return;
  options.logger.info(`teacher ${teacher.model} does not exist yet: running ${teacher.recipe} first`);
  await runRecipe(await loadRecipe(teacher.recipe), { ...options, only: undefined, hooks: undefined });
  if (!(await pathExists(teacher.model))) {
    throw new SlmError(`teacher.recipe ${teacher.recipe} ran, but teacher.model ${teacher.model} still does not exist: point model at that run's final/`, {
      code: 'ERR_RECIPE',
    });
  }
}

/** distill.compare_ce: the same student, seed and data, without the teacher's distributions. */
async function trainCeBaseline(recipe: Recipe, paths: RunPaths, backend: BackendReport, options: RunRecipeOptions): Promise<TrainSummary> {
  options.logger.info('training the CE-only baseline: the same student on the same data, without the teacher\'s distributions');
  const progress = createProgress({ totalSteps: recipe.train.maxSteps ?? 0, stream: options.progressStream, json: options.json });
  try {
    return await trainStage({ ...recipe, distill: undefined }, ceBaselinePaths(paths), backend, progress);
  } finally {
    progress.stop();
  }
}

async function exportStage(recipe: Recipe, paths: RunPaths, logger: Logger): Promise<ExportResult[]> {
  const results: ExportResult[] = [];
  for (const spec of recipe.export!.formats) {
    const [format, type] = spec.split(':') as [ExportFormat, string | undefined];
    const result = await exportRun({ run: paths.root, format, ggufType: type === undefined ? undefined : ggufExportType(type) });
    logger.info(`exported ${spec}: ${result.path}`);
    results.push(result);
  }
  return results;
}
