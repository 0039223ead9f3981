import { SlmError } from '../util/errors.ts';

/**
 * Base class of the file-format errors: the message starts with the file it is about, and `code` is stable
 * so callers can branch on the kind of failure without parsing messages.
 */
export class FormatError extends SlmError {
  constructor(
    readonly file: string,
    code: string,
    detail: string,
    options: { cause?: unknown } = {},
  ) {
    super(`${file}: ${detail}`, { code, cause: options.cause });
  }
}

/** A short rendering of a JSON value for an error message. */
export function describeValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
