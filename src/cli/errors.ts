/**
 * Errors the user can act on. Each carries a stable `code` to branch on and the exit code the CLI ends
 * with; main.ts is the one place that turns an error into a message and an exit code. This module
 * imports nothing, so library code anywhere may throw these.
 */
export class SlmError extends Error {
  readonly code: string;
  readonly exitCode: number;

  constructor(message: string, options: { code?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? 'ERR_SLM';
    this.exitCode = options.exitCode ?? 1;
  }
}

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
