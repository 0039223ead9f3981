/**
 * Errors the user can act on. Each carries a stable `code` to branch on and the exit code the CLI ends
 * with; the CLI prints them as one line (cli/errors.ts). This module imports nothing, so library code
 * anywhere may throw these. An error that is not an SlmError is taken for a bug.
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
