/**
 * Base class of the file-format errors: the message starts with the file it is about, and `code` is stable
 * so callers can branch on the kind of failure without parsing messages.
 */
export class FormatError extends Error {
  constructor(
    readonly file: string,
    readonly code: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${detail}`, options);
    this.name = new.target.name;
  }
}
