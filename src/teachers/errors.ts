import { SlmError } from '../util/errors.ts';

/**
 * What can go wrong talking to a teacher server. The request pool retries exactly the errors whose
 * `retryable` is true; every message names the endpoint and never carries an API key.
 */
export class TeacherError extends SlmError {
  readonly retryable: boolean;

  constructor(message: string, options: { code: string; retryable: boolean; cause?: unknown }) {
    super(message, { code: options.code, cause: options.cause });
    this.retryable = options.retryable;
  }
}

/** The server answered with a non-2xx status; 429 and 5xx are worth retrying, other 4xx are not. */
export class TeacherHttpError extends TeacherError {
  readonly status: number;
  /** From the `Retry-After` header, when the server sent one we could read. */
  readonly retryAfterMs: number | undefined;

  constructor(url: string, status: number, bodyExcerpt: string, retryAfterMs: number | undefined) {
    const retryable = status === 429 || status >= 500;
    const hint = status === 401 || status === 403 ? ' (the server refused the credentials: check the API key in the environment variable the teacher\'s `apiKeyEnv` names)' : '';
    super(`teacher endpoint ${url} answered HTTP ${status}${bodyExcerpt ? `: ${bodyExcerpt}` : ''}${hint}`, {
      code: 'ERR_TEACHER_HTTP',
      retryable,
    });
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The connection failed or was dropped before the whole answer arrived. */
export class TeacherNetworkError extends TeacherError {
  constructor(url: string, cause: unknown) {
    const reason = cause instanceof Error ? describeNetworkCause(cause) : String(cause);
    super(`teacher endpoint ${url} could not be reached or dropped the connection (${reason})`, {
      code: 'ERR_TEACHER_NETWORK',
      retryable: true,
      cause,
    });
  }
}

export class TeacherTimeoutError extends TeacherError {
  constructor(endpoint: string, timeoutMs: number, cause?: unknown) {
    super(`teacher request to ${endpoint} timed out after ${timeoutMs} ms`, {
      code: 'ERR_TEACHER_TIMEOUT',
      retryable: true,
      cause,
    });
  }
}

/**
 * A 2xx answer we cannot use: not JSON (truncated, garbled), or JSON without the fields the wire format
 * promises. Such faults are transient on real servers and are retried like a 5xx; an answer that shows the
 * server lacks a feature (no logprobs at all) is not (`lacksFeature`).
 */
export class TeacherResponseError extends TeacherError {
  constructor(url: string, problem: string, { lacksFeature = false }: { lacksFeature?: boolean } = {}) {
    super(`teacher endpoint ${url} sent an unusable response: ${problem}`, {
      code: 'ERR_TEACHER_RESPONSE',
      retryable: !lacksFeature,
    });
  }
}

/** 401 or 403: every further request would be refused too, so the whole stage stops at the first. */
export function isAuthFailure(error: TeacherError): error is TeacherHttpError {
  return error instanceof TeacherHttpError && (error.status === 401 || error.status === 403);
}

/** Bad settings or requests, found before anything is sent. */
export class TeacherConfigError extends TeacherError {
  constructor(message: string) {
    super(message, { code: 'ERR_TEACHER_CONFIG', retryable: false });
  }
}

function describeNetworkCause(error: Error): string {
  const inner = error.cause instanceof Error ? error.cause : undefined;
  const code = inner && 'code' in inner ? String((inner as { code: unknown }).code) : undefined;
  return [error.message, inner?.message, code].filter(Boolean).join(': ');
}

/** The first TeacherError in an error's cause chain (clients such as openai wrap what our fetch throws). */
export function findTeacherError(error: unknown): TeacherError | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 8; depth++) {
    if (current instanceof TeacherError) return current;
    current = current.cause;
  }
  return undefined;
}
