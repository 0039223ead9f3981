/**
 * The command line: global options and the list of commands. Each command lives in commands/<name>.ts,
 * exporting its programmatic function and a `register` that wires it here; adding one is one line in
 * COMMANDS. Parsing never exits the process: `runProgram` returns the exit code or throws.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerBench } from './commands/bench.ts';
import { registerCompare } from './commands/compare.ts';
import { registerDoctor } from './commands/doctor.ts';
import { registerEval } from './commands/eval.ts';
import { registerExport } from './commands/export.ts';
import { registerGenerate } from './commands/generate.ts';
import { registerPlan } from './commands/plan.ts';
import { registerRun } from './commands/run.ts';
import { registerRuns } from './commands/runs.ts';
import { registerSchema } from './commands/schema.ts';
import { registerScore } from './commands/score.ts';
import { UsageError } from './errors.ts';
import type { CliIo, CommandContext } from './io.ts';

const COMMANDS: ((program: Command, context: CommandContext) => void)[] = [
  registerRun,
  registerPlan,
  registerScore,
  registerGenerate,
  registerEval,
  registerCompare,
  registerExport,
  registerDoctor,
  registerBench,
  registerSchema,
  registerRuns,
];

export function buildProgram(context: CommandContext): Command {
  const program = new Command('slm-train')
    .description('knowledge distillation and LoRA fine-tuning of small language models')
    .version(packageVersion())
    .option('--verbose', 'on errors, show the stack')
    .addHelpText('after', '\n`slm-train <recipe.yaml>` is short for `slm-train run <recipe.yaml>`.')
    // Set before the commands are added: subcommands copy these settings when created.
    .exitOverride()
    .configureOutput({
      writeOut: (text) => context.io.stdout.write(text),
      writeErr: (text) => context.io.stderr.write(text),
      // Usage errors are rethrown as UsageError and printed by main.ts like every other error.
      outputError: () => {},
    });
  for (const register of COMMANDS) register(program, context);
  return program;
}

/** Parses `argv` (without node and the script) and runs the command; throws what the command throws. */
export async function runProgram(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode = 0;
  const program = buildProgram({ io, setExitCode: (code) => (exitCode = code) });
  try {
    await program.parseAsync(withDefaultCommand(argv, commandNames(program)), { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    return commanderExitCode(error);
  }
  return exitCode;
}

/** `slm-train recipe.yaml ...` means `slm-train run recipe.yaml ...`. */
export function withDefaultCommand(argv: readonly string[], commands: ReadonlySet<string>): string[] {
  const recipeIndex = argv.findIndex((arg) => /\.ya?ml$/i.test(arg));
  if (recipeIndex === -1 || argv.slice(0, recipeIndex).some((arg) => commands.has(arg))) return [...argv];
  return ['run', ...argv];
}

function commandNames(program: Command): Set<string> {
  return new Set(['help', ...program.commands.flatMap((command) => [command.name(), ...command.aliases()])]);
}

function commanderExitCode(error: CommanderError): number {
  switch (error.code) {
    case 'commander.helpDisplayed':
    case 'commander.version':
      return 0;
    case 'commander.help':
      return 2; // no command given: commander has already printed the help
    default:
      throw new UsageError(`${error.message.replace(/^error: /, '').replace(/\n/g, ' ')} (see slm-train --help)`);
  }
}

function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}
