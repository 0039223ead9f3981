import { SlmError } from '../src/util/errors.ts';

/** A problem with dataset input; the message starts with `file:line:` (or `file:`) and says what was expected. */
export class DatasetError extends SlmError {
  constructor(message: string) {
    super(message, { code: 'ERR_DATASET' });
  }
}
