import type { Command } from 'commander';
import { formatCount, formatMetric, formatValue } from '../../report/format.ts';
import type { RunSummary } from '../../report/run-summary.ts';
import type { CliIo, CommandContext } from '../io.ts';

export interface RunsCommandOptions {
  dir: string;
  json: boolean;
}

export async function runsCommand(options: RunsCommandOptions, io: CliIo): Promise<number> {
  const { listRuns } = await import('../../report/run-summary.ts');
  const runs = await listRuns(options.dir);
  if (options.json) {
    io.stdout.write(`${JSON.stringify(runs)}\n`);
  } else if (runs.length === 0) {
    io.stdout.write(`no runs in ${options.dir}\n`);
  } else {
    io.stdout.write(runsTable(runs));
    for (const run of runs) if (run.problem) io.stdout.write(`${run.name}: ${run.problem}\n`);
  }
  return 0;
}

function runsTable(runs: readonly RunSummary[]): string {
  const header = ['run', 'student', 'parameters', 'steps', 'train loss', 'val loss', 'student scores (primary metric, %)', 'final', 'report'];
  const rows = runs.map((run) => [
    run.name,
    run.student?.kind ?? '?',
    run.student?.parameters == null ? '?' : formatCount(run.student.parameters),
    `${formatCount(run.steps.done)}/${run.steps.max === null ? '?' : formatCount(run.steps.max)}`,
    run.finalLoss === null ? '-' : formatValue(run.finalLoss),
    run.validationLoss === null ? '-' : formatValue(run.validationLoss),
    run.suites.map((s) => `${s.suite} ${formatMetric(s)}`).join('; ') || '-',
    run.final ? 'yes' : 'no',
    run.report ?? '-',
  ]);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => row[i].length)));
  const line = (row: readonly string[]) => row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

export function registerRuns(program: Command, { io, setExitCode }: CommandContext): void {
  program
    .command('runs')
    .description('list the run folders with their student, progress, losses, scores and report')
    .option('--dir <dir>', 'the folder holding the runs', 'runs')
    .option('--json', 'print the list as JSON')
    .action(async (flags: { dir: string; json?: boolean }) => setExitCode(await runsCommand({ dir: flags.dir, json: flags.json ?? false }, io)));
}
