import type { Command } from 'commander';
import { COMPARE_FAILED_EXIT_CODE, CompareError, type Gate } from '../../eval/compare.ts';
import { SlmError } from '../../util/errors.ts';
import { UsageError } from '../errors.ts';
import type { CliIo, CommandContext } from '../io.ts';
import { numberArg } from '../options.ts';

export interface CompareCommandOptions {
  a: string;
  b: string;
  maxDrop?: number;
  maxDropStderr?: number;
  /** Metrics to gate on [each suite's primary metric]. */
  metric?: string[];
  json: boolean;
}

/**
 * Exit codes: 0 when B holds up against A, 1 when a gated metric regressed beyond the threshold, 2 when
 * the comparison could not be made (a missing or unreadable result, no suite in common, a bad option), so
 * a nightly job can tell a regression from a broken evaluation.
 */
export async function compareCommand(options: CompareCommandOptions, io: CliIo): Promise<number> {
  try {
    return await runComparison(options, io);
  } catch (error) {
    if (error instanceof SlmError && error.exitCode === COMPARE_FAILED_EXIT_CODE) throw error;
    throw new CompareError(error instanceof Error ? error.message : String(error), error);
  }
}

async function runComparison(options: CompareCommandOptions, io: CliIo): Promise<number> {
  const { compareResults, DEFAULT_GATE } = await import('../../eval/compare.ts');
  const { readEvalResults, formatMetric } = await import('../../eval/report.ts');
  if (options.maxDrop !== undefined && options.maxDropStderr !== undefined) throw new UsageError('give --max-drop or --max-drop-stderr, not both');
  const gate: Gate =
    options.maxDrop !== undefined ? { maxDrop: options.maxDrop } : options.maxDropStderr !== undefined ? { maxDropStderr: options.maxDropStderr } : DEFAULT_GATE;
  const comparison = compareResults(await readEvalResults(options.a), await readEvalResults(options.b), gate, options.metric);
  if (options.json) {
    io.stdout.write(`${JSON.stringify({ a: options.a, b: options.b, gate, ...comparison })}\n`);
  } else {
    const lines = [`A: ${options.a}`, `B: ${options.b}`, '', '| suite | metric | A | B | change | gate |', '|---|---|---|---|---|---|'];
    for (const row of comparison.rows) {
      const gateText = row.allowedDrop === null ? '' : row.regressed ? `REGRESSED (allowed -${(row.allowedDrop * 100).toFixed(2)})` : 'ok';
      lines.push(`| ${row.suite} | ${row.metric} | ${formatMetric(row.a)} | ${formatMetric(row.b)} | ${(row.delta * 100).toFixed(2)} | ${gateText} |`);
    }
    for (const warning of comparison.warnings) lines.push(`warning: ${warning}`);
    lines.push(comparison.regressed ? 'B is worse than A beyond the threshold' : 'no regression beyond the threshold');
    io.stdout.write(`${lines.join('\n')}\n`);
  }
  return comparison.regressed ? 1 : 0;
}

export function registerCompare(program: Command, { io, setExitCode }: CommandContext): void {
  program
    .command('compare')
    .description('compare two evaluations side by side; exits 1 when B regressed beyond the threshold (a nightly gate), 2 when they cannot be compared')
    .argument('<a>', 'the reference: a run folder, an eval folder or a <suite>.json')
    .argument('<b>', 'the candidate, likewise')
    .option('--max-drop <x>', 'largest allowed drop of a primary metric, as a fraction (0.02 = 2 points)', numberArg)
    .option('--max-drop-stderr <k>', 'largest allowed drop in combined standard errors [2]', numberArg)
    .option('--metric <name...>', "metrics to gate on, as the results name them (e.g. acc, 'exact_match,strict-match') [each suite's primary]")
    .option('--json', 'print the comparison as JSON')
    .action(async (a: string, b: string, flags: Omit<CompareCommandOptions, 'a' | 'b' | 'json'> & { json?: boolean }) =>
      setExitCode(await compareCommand({ a, b, ...flags, json: flags.json ?? false }, io)),
    );
}
