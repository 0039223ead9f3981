import type { TextStream } from '../util/progress.ts';

/** Where a command writes: process.stdout/stderr in the CLI, buffers in tests. */
export interface CliIo {
  /** Results: the report, the schema, --json output. */
  stdout: TextStream;
  /** Everything else: progress, log lines, errors. */
  stderr: TextStream;
  /** What `-` reads (a prompt on stdin); process.stdin in the CLI. */
  stdin?: AsyncIterable<string | Uint8Array>;
}

/** What program.ts hands each command's registration. */
export interface CommandContext {
  io: CliIo;
  /** Records the exit code of the command that ran. */
  setExitCode(code: number): void;
}
