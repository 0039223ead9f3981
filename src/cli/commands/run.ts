import { Option, type Command } from 'commander';
import { loadRecipe } from '../../recipe/index.ts';
import type { Backend, TrainSpec } from '../../recipe/index.ts';
import { streamLogger } from '../../util/progress.ts';
import { STAGES, type Stage } from '../../stages/stages.ts';
import type { CliIo, CommandContext } from '../io.ts';
import { backendOption } from '../options.ts';

export interface RunCommandOptions {
  /** Path of recipe.yaml, as the user wrote it (error messages quote it). */
  recipe: string;
  /** `key.path=value` settings over the file's (`train.lr=1e-4`). */
  overrides?: string[];
  /** Replaces the recipe's backend. */
  backend?: Backend;
  /** Print the result as one JSON line on stdout, and no progress. */
  json: boolean;
  /** Run one stage alone. */
  only?: Stage;
  /** Replaces the recipe's train.resume. */
  resume?: TrainSpec['resume'];
}

export async function runCommand(options: RunCommandOptions, io: CliIo): Promise<number> {
  const loaded = await loadRecipe(options.recipe, { overrides: options.overrides });
  const recipe = {
    ...loaded,
    ...(options.backend && { backend: options.backend }),
    ...(options.resume && { train: { ...loaded.train, resume: options.resume } }),
  };
  // Imported when used: the run pipeline loads tfjs, which other commands do not need.
  const { runRecipe } = await import('../../stages/run-recipe.ts');
  const result = await runRecipe(recipe, { logger: streamLogger(io.stderr), json: options.json, progressStream: io.stderr, only: options.only });
  if (options.json) io.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

/** `slm-train run <recipe.yaml>`; `slm-train <recipe.yaml>` is short for it (see program.ts). */
export function registerRun(program: Command, { io, setExitCode }: CommandContext): void {
  program
    .command('run')
    .description('run a recipe: generate data, train, evaluate, export (resumes an interrupted run)')
    .argument('<recipe.yaml>', 'the recipe to run')
    .argument('[key.path=value...]', 'settings over the recipe\'s, validated as the file is: train.lr=1e-4 student.rank=32')
    .addOption(backendOption("tfjs backend, overriding the recipe's"))
    .addOption(new Option('--only <stage>', 'run one stage alone').choices(STAGES))
    .addOption(new Option('--resume <mode>', "overrides train.resume: force goes on from a checkpoint trained under other settings").choices(['auto', 'never', 'force']))
    .option('--json', 'print the result as JSON on stdout; no progress display')
    .action(async (recipe: string, overrides: string[], flags: { backend?: Backend; json?: boolean; only?: Stage; resume?: TrainSpec['resume'] }) => {
      setExitCode(await runCommand({ recipe, overrides, backend: flags.backend, json: flags.json ?? false, only: flags.only, resume: flags.resume }, io));
    });
}
