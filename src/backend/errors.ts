import { SlmError } from '../util/errors.ts';
import type { BackendAttempt, BackendChoice } from './types.ts';

/** No backend of those asked for could be loaded; `attempts` holds the reason for each. */
export class BackendUnavailableError extends SlmError {
  constructor(
    readonly choice: BackendChoice,
    readonly attempts: BackendAttempt[],
  ) {
    const reasons = attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ');
    super(`backend '${choice}' is not available: ${reasons}`, { code: 'BACKEND_UNAVAILABLE' });
  }
}

/** An argument of `initBackend` is out of range; the message names it and what is valid. */
export class BackendOptionError extends SlmError {
  constructor(message: string) {
    super(message, { code: 'INVALID_BACKEND_OPTION' });
  }
}
