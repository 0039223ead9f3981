/**
 * Runs a recipe's stages in order against its run folder. Today the pipeline is the train stage; later
 * stages (generate, eval, export) read what the earlier ones wrote, so each can be re-run alone.
 */
import { initBackend } from '../backend/index.ts';
import { resolvedRecipeYaml, type Recipe } from '../recipe/index.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { runPaths } from './layout.ts';
import { RunLock } from './run-lock.ts';
import { createProgress, type Logger, type TextStream } from './progress.ts';
import { trainStage, type TrainHooks, type TrainSummary } from './train-stage.ts';

export interface RunRecipeOptions {
  logger: Logger;
  /** Machine-readable output: no progress display. */
  json: boolean;
  /** Where progress is drawn (stderr in the CLI). */
  progressStream: TextStream;
  hooks?: TrainHooks;
}

export interface RunRecipeResult {
  /** The run folder. */
  runDir: string;
  backend: string;
  train: TrainSummary;
}

export async function runRecipe(recipe: Recipe, options: RunRecipeOptions): Promise<RunRecipeResult> {
  const backend = await initBackend(recipe.backend);
  options.logger.info(backend.summary);
  const paths = runPaths(recipe.outputDir, recipe.name);
  const lock = await RunLock.acquire(paths.root);
  const progress = createProgress({ totalSteps: recipe.train.maxSteps, stream: options.progressStream, json: options.json });
  try {
    await writeFileAtomic(paths.recipe, resolvedRecipeYaml(recipe));
    const train = await trainStage(recipe, paths, backend, progress, options.hooks);
    return { runDir: paths.root, backend: backend.backend, train };
  } finally {
    progress.stop();
    await lock.release();
  }
}
