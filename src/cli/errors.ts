/**
 * How errors end the CLI: main.ts is the one place that turns an error into a message and an exit code.
 * The errors themselves (SlmError and its subclasses) live with the code that throws them.
 */
import { SlmError } from '../util/errors.ts';

/** Bad command-line arguments: unknown command or option, missing argument. */
export class UsageError extends SlmError {
  constructor(message: string) {
    super(message, { code: 'ERR_USAGE', exitCode: 2 });
  }
}

export function exitCodeOf(error: unknown): number {
  return error instanceof SlmError ? error.exitCode : 1;
}

/**
 * The text main.ts prints: one line, `slm-train: error: ...`; with `verbose`, the stack (and its causes)
 * follows. An error that is not an SlmError is a bug, so the line says where to find more.
 */
export function formatCliError(error: unknown, { verbose }: { verbose: boolean }): string {
  const expected = error instanceof SlmError;
  const summary = expected ? error.message : `${describe(error)}${verbose ? '' : ' (rerun with --verbose for the stack)'}`;
  const line = `slm-train: error: ${summary}`;
  return verbose ? `${line}\n${stackOf(error)}` : line;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : `thrown value ${String(error)}`;
}

function stackOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const stack = error.stack ?? describe(error);
  return error.cause === undefined ? stack : `${stack}\nCaused by: ${stackOf(error.cause)}`;
}
