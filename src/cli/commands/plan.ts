import type { Command } from 'commander';
import { loadRecipe, type Backend } from '../../recipe/index.ts';
import type { TrainingMemory } from '../../model/memory-plan.ts';
import { formatSize } from '../../util/format-size.ts';
import type { CliIo, CommandContext } from '../io.ts';
import { backendOption } from '../options.ts';

export interface PlanCommandOptions {
  recipe: string;
  /** `key.path=value` settings over the file's, as `run` takes them. */
  overrides?: string[];
  backend?: Backend;
  json: boolean;
}

/** Prints the train stage's memory plan; exits 1 when it does not fit, as the run would stop. */
export async function planCommand(options: PlanCommandOptions, io: CliIo): Promise<number> {
  const recipe = await loadRecipe(options.recipe, { overrides: options.overrides });
  const { initBackend } = await import('../../backend/index.ts');
  const { planStudentMemory } = await import('../../stages/memory.ts');
  const { planProblem } = await import('../../model/memory-plan.ts');
  const backend = await initBackend(options.backend ?? recipe.backend);
  const memory = await planStudentMemory(recipe);
  const problem = memory.plan.fits ? null : planProblem(memory.plan);
  if (options.json) {
    const { plan, ...choices } = memory;
    io.stdout.write(`${JSON.stringify({ recipe: options.recipe, backend: backend.backend, ...choices, ...plan, problem })}\n`);
  } else {
    io.stdout.write(planTable(options.recipe, memory, problem));
  }
  return memory.plan.fits ? 0 : 1;
}

function planTable(recipe: string, { plan, residency, recompute, pinBytes }: TrainingMemory, problem: string | null): string {
  const rows = plan.items.map((i) => [i.item, i.where, formatSize(i.bytes), i.detail]);
  const header = ['item', 'where', 'size', 'what'];
  const widths = header.map((_, c) => Math.max(...[header, ...rows].map((row) => row[c].length)));
  const line = (row: string[]) => row.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd();
  return [
    `memory plan for ${recipe}: base ${residency}, recompute ${recompute ? 'on' : 'off'}${pinBytes > 0 ? `, up to ${formatSize(pinBytes)} of the base kept uploaded` : ''}`,
    line(header),
    ...rows.map(line),
    peakLine('backend peak', plan.backendPeak, plan.capacity.bytes, `${plan.capacity.backend}: ${plan.capacity.source}`),
    peakLine('host peak', plan.hostPeak, plan.hostCapacity, 'host memory less 2 GiB for the system'),
    problem === null ? 'fits' : `does not fit: ${problem}`,
    '',
  ].join('\n');
}

function peakLine(what: string, bytes: number, capacity: number, source: string): string {
  return `${what}: ${formatSize(bytes)} of ${formatSize(capacity)} (${source})`;
}

export function registerPlan(program: Command, { io, setExitCode }: CommandContext): void {
  program
    .command('plan')
    .description("the train stage's memory plan: what the base, adapters, optimizer, activations and logits take, against what the backend holds")
    .argument('<recipe.yaml>', 'the recipe to plan')
    .argument('[key.path=value...]', "settings over the recipe's, as run takes them")
    .addOption(backendOption("tfjs backend, overriding the recipe's"))
    .option('--json', 'print the plan as JSON')
    .action(async (recipe: string, overrides: string[], flags: { backend?: Backend; json?: boolean }) => {
      setExitCode(await planCommand({ recipe, overrides, backend: flags.backend, json: flags.json ?? false }, io));
    });
}
