/**
 * slm-train as a library: what the CLI does, callable from TypeScript. Run a recipe whole or by stages
 * (distil = generate + train), load any model this project reads, evaluate a model on suites, and export
 * a run. Everything returns what the CLI prints as JSON; nothing is written to the console unless a
 * logger is given.
 */
import { loadRecipe } from './recipe/index.ts';
import type { Recipe } from './recipe/index.ts';
import { silentLogger, type Logger } from './util/progress.ts';
import { runRecipe, type RunRecipeOptions, type RunRecipeResult } from './stages/run-recipe.ts';
import type { Stage } from './stages/stages.ts';

export { initBackend } from './backend/index.ts';
export { loadRecipe, parseRecipe, RecipeError } from './recipe/index.ts';
export type { Recipe } from './recipe/index.ts';
export { loadModel, inspectModel, type LoadedModel, type LoadModelOptions } from './model-files/load.ts';
export { CausalLM } from './model/causal-lm.ts';
export { generateBatch } from './model/generate.ts';
export { scoreTokens } from './model/score.ts';
export { evaluate, type EvaluateOptions } from './eval/evaluate.ts';
export { localTarget, serverTarget, type EvalTarget } from './eval/targets.ts';
export { readEvalResults } from './eval/report.ts';
export { compareResults, type Comparison, type Gate } from './eval/compare.ts';
export type { SuiteResult } from './eval/runner.ts';
export { exportRun, type ExportOptions, type ExportResult } from './export/export-run.ts';
export { createTeacher } from './teachers/create.ts';
export { SlmError } from './util/errors.ts';
export type { RunRecipeResult, Stage };

export type RunOptions = Partial<Omit<RunRecipeOptions, 'only'>>;

/** Runs every stage of a recipe (a path to recipe.yaml, or one already loaded), resuming an interrupted run. */
export function run(recipe: string | Recipe, options: RunOptions = {}): Promise<RunRecipeResult> {
  return runStages(recipe, undefined, options);
}

/** The train stage alone (on the recipe's data, or what an earlier generate stage wrote). */
export function train(recipe: string | Recipe, options: RunOptions = {}): Promise<RunRecipeResult> {
  return runStages(recipe, ['train'], options);
}

/** Distillation: the teacher labels data (generate), then the student learns from it (train). */
export function distil(recipe: string | Recipe, options: RunOptions = {}): Promise<RunRecipeResult> {
  return runStages(recipe, ['generate', 'train'], options);
}

async function runStages(recipe: string | Recipe, only: Stage[] | undefined, options: RunOptions): Promise<RunRecipeResult> {
  const loaded = typeof recipe === 'string' ? await loadRecipe(recipe) : recipe;
  const logger: Logger = options.logger ?? silentLogger;
  return runRecipe(loaded, {
    ...options,
    logger,
    json: options.json ?? true,
    progressStream: options.progressStream ?? { write: () => true },
    ...(only && { only }),
  });
}
