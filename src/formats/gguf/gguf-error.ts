import { FormatError } from '../format-error.ts';

/**
 * Every failure of the GGUF reader and writer: a malformed or unsupported file, a bad argument, or a writer
 * used out of order. The message starts with the file; `code` names the kind of failure.
 */
export class GgufError extends FormatError {}
