import type { Command } from 'commander';
import type { CliIo, CommandContext } from '../io.ts';

export interface DoctorCommandOptions {
  json: boolean;
}

export async function doctorCommand(options: DoctorCommandOptions, io: CliIo): Promise<number> {
  // Imported when used: probing backends loads tfjs, which other commands do not need.
  const { doctorReport, formatDoctorReport } = await import('../../backend/index.ts');
  const report = await doctorReport();
  const text = options.json ? JSON.stringify(report, null, 2) : formatDoctorReport(report);
  io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  return 0;
}

export function registerDoctor(program: Command, { io, setExitCode }: CommandContext): void {
  program
    .command('doctor')
    .description('check the machine: which tfjs backends load, threads, versions')
    .option('--json', 'print the report as JSON')
    .action(async (flags: { json?: boolean }) => setExitCode(await doctorCommand({ json: flags.json ?? false }, io)));
}
