import type { BackendAttempt, BackendChoice } from './types.ts';

/** No backend of those asked for could be loaded; `attempts` holds the reason for each. */
export class BackendUnavailableError extends Error {
  readonly code = 'BACKEND_UNAVAILABLE';

  constructor(
    readonly choice: BackendChoice,
    readonly attempts: BackendAttempt[],
  ) {
    const reasons = attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ');
    super(`backend '${choice}' is not available: ${reasons}`);
    this.name = 'BackendUnavailableError';
  }
}

/** An argument of `initBackend` is out of range; the message names it and what is valid. */
export class BackendOptionError extends Error {
  readonly code = 'INVALID_BACKEND_OPTION';

  constructor(message: string) {
    super(message);
    this.name = 'BackendOptionError';
  }
}
