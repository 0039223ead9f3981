import type { Command } from 'commander';
import type { Backend } from '../../recipe/index.ts';
import type { CliIo, CommandContext } from '../io.ts';
import { backendOption } from '../options.ts';

export interface DoctorCommandOptions {
  json: boolean;
  /** Also select this backend as a run would, and report the choice. */
  backend?: Backend;
}

export async function doctorCommand(options: DoctorCommandOptions, io: CliIo): Promise<number> {
  // Imported when used: probing backends loads tfjs, which other commands do not need.
  const backends = await import('../../backend/index.ts');
  const report = await backends.doctorReport();
  const selected = options.backend ? await backends.initBackend(options.backend) : undefined;
  const text = options.json
    ? JSON.stringify(selected ? { ...report, selected } : report, null, 2)
    : `${backends.formatDoctorReport(report)}${selected ? `
With --backend ${options.backend}: ${selected.summary}` : ''}`;
  io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  return 0;
}

export function registerDoctor(program: Command, { io, setExitCode }: CommandContext): void {
  program
    .command('doctor')
    .description('check the machine: which tfjs backends load, threads, versions')
    .addOption(backendOption('also select this backend as a run would, and report the choice'))
    .option('--json', 'print the report as JSON')
    .action(async (flags: { json?: boolean; backend?: Backend }) => setExitCode(await doctorCommand({ json: flags.json ?? false, backend: flags.backend }, io)));
}
