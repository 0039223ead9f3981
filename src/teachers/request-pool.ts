import { TeacherConfigError, TeacherHttpError, TeacherTimeoutError, findTeacherError, isAuthFailure, type TeacherError } from './errors.ts';
import { backoffDelayMs } from './retry-policy.ts';

/** Time as the pool sees it; tests inject one that records sleeps instead of waiting. */
export interface Clock {
  /** Milliseconds since the epoch (Retry-After dates are compared with it). */
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Calls `fire` after `ms` unless the returned cancel is called first (the per-attempt timeout). */
  setTimer(ms: number, fire: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  setTimer: (ms, fire) => {
    const timer = setTimeout(fire, ms);
    return () => clearTimeout(timer);
  },
};

export interface RequestPoolOptions {
  /** Base URLs used round robin, one per attempt, so a retry goes to the next endpoint. */
  endpoints: string[];
  /** Most attempts in flight at once. */
  concurrency: number;
  /** Most attempts started in any 60 s window; unlimited when absent. */
  requestsPerMinute?: number;
  /** Per attempt, timed by the clock. */
  timeoutMs: number;
  /** Retries after the first attempt. */
  maxRetries: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  clock?: Clock;
  /** Uniform in [0, 1), for the jitter. */
  random?: () => number;
}

export interface Attempt {
  endpoint: string;
  /** Aborted when the attempt times out: pass it to fetch. */
  signal: AbortSignal;
  /** 0 for the first try. */
  attempt: number;
  /**
   * Call when the answer has been received whole: its slot goes to the next request while this one's body is
   * parsed, so parsing (milliseconds for a labeled answer) does not hold back the next request.
   */
  received(): void;
}

export interface PoolCounters {
  /** Attempts sent, retries included. */
  requests: number;
  retries: number;
  /** Calls that failed for good. */
  failures: number;
  timeouts: number;
  tokens: number;
  /** Summed duration of all attempts. */
  requestMs: number;
  /** Summed waiting before retries (backoff, Retry-After) and for the rate limit. */
  waitMs: number;
}

const WINDOW_MS = 60_000;

/**
 * Sends provider-independent requests: round robin over endpoints, a concurrency limit, a
 * requests-per-minute limit, a timeout per attempt, and retries with exponential backoff and full jitter
 * for errors marked retryable (network, timeout, 429, 5xx), honouring Retry-After.
 */
export class RequestPool {
  private readonly options: Required<Omit<RequestPoolOptions, 'requestsPerMinute'>> & { requestsPerMinute?: number };
  private readonly counters: PoolCounters = { requests: 0, retries: 0, failures: 0, timeouts: 0, tokens: 0, requestMs: 0, waitMs: 0 };
  private nextEndpoint = 0;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly recentStarts: number[] = [];
  /** Set by a 401/403: every later call fails with it at once, without a request. */
  private refused: TeacherError | undefined;

  constructor(options: RequestPoolOptions) {
    validate(options);
    this.options = {
      backoffBaseMs: 500,
      backoffMaxMs: 30_000,
      clock: systemClock,
      random: Math.random,
      ...options,
    };
  }

  /** Runs `task` with retries; `tokensOf` counts the tokens of a successful result for the summary. */
  async run<T>(task: (attempt: Attempt) => Promise<T>, tokensOf?: (result: T) => number): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (this.refused) {
        this.counters.failures++;
        throw this.refused;
      }
      try {
        const result = await this.attemptOnce(task, attempt);
        if (tokensOf) this.counters.tokens += tokensOf(result);
        return result;
      } catch (error) {
        const known = findTeacherError(error);
        if (known && isAuthFailure(known)) this.refused ??= known;
        if (!known?.retryable || attempt >= this.options.maxRetries) {
          this.counters.failures++;
          // Clients such as openai wrap what our transport throws ("Connection error."): surface ours.
          throw known ?? error;
        }
        this.counters.retries++;
        const retryAfter = known instanceof TeacherHttpError ? known.retryAfterMs : undefined;
        const { backoffBaseMs, backoffMaxMs, random } = this.options;
        await this.wait(retryAfter ?? backoffDelayMs(attempt, backoffBaseMs, backoffMaxMs, random));
      }
    }
  }

  stats(): PoolCounters {
    return { ...this.counters };
  }

  private async attemptOnce<T>(task: (attempt: Attempt) => Promise<T>, attempt: number): Promise<T> {
    await this.acquireSlot();
    let held = true;
    const release = () => {
      if (held) this.releaseSlot();
      held = false;
    };
    try {
      if (this.refused) throw this.refused;
      await this.takeRateToken();
      const endpoint = this.options.endpoints[this.nextEndpoint++ % this.options.endpoints.length];
      const started = this.options.clock.now();
      this.counters.requests++;
      try {
        return await this.withTimeout(endpoint, (signal) => task({ endpoint, signal, attempt, received: release }));
      } finally {
        this.counters.requestMs += Math.max(0, this.options.clock.now() - started);
      }
    } finally {
      release();
    }
  }

  /** Races the task with the clock's timer, so a task that ignores its signal still cannot hang the pool. */
  private withTimeout<T>(endpoint: string, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const { timeoutMs, clock } = this.options;
    const controller = new AbortController();
    return new Promise<T>((resolve, reject) => {
      const cancel = clock.setTimer(timeoutMs, () => {
        this.counters.timeouts++;
        const error = new TeacherTimeoutError(endpoint, timeoutMs);
        controller.abort(error);
        reject(error);
      });
      task(controller.signal).then(
        (value) => { cancel(); resolve(value); },
        (error: unknown) => { cancel(); reject(error); },
      );
    });
  }

  private async acquireSlot(): Promise<void> {
    while (this.inFlight >= this.options.concurrency) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.inFlight++;
  }

  private releaseSlot(): void {
    this.inFlight--;
    this.waiting.shift()?.();
  }

  /** Sliding 60 s window over attempt start times. */
  private async takeRateToken(): Promise<void> {
    const limit = this.options.requestsPerMinute;
    if (limit === undefined) return;
    const { clock } = this.options;
    for (;;) {
      const now = clock.now();
      while (this.recentStarts.length > 0 && this.recentStarts[0] <= now - WINDOW_MS) this.recentStarts.shift();
      if (this.recentStarts.length < limit) {
        this.recentStarts.push(now);
        return;
      }
      await this.wait(this.recentStarts[0] + WINDOW_MS - now);
    }
  }

  private async wait(ms: number): Promise<void> {
    this.counters.waitMs += ms;
    await this.options.clock.sleep(ms);
  }
}

function validate(options: RequestPoolOptions): void {
  if (options.endpoints.length === 0) throw new TeacherConfigError('request pool: `endpoints` must list at least one URL');
  const positive: [string, number | undefined][] = [
    ['concurrency', options.concurrency],
    ['timeoutMs', options.timeoutMs],
    ['requestsPerMinute', options.requestsPerMinute],
  ];
  for (const [name, value] of positive) {
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
      throw new TeacherConfigError(`request pool: \`${name}\` must be a positive integer, got ${value}`);
    }
  }
  if (!(Number.isInteger(options.maxRetries) && options.maxRetries >= 0)) {
    throw new TeacherConfigError(`request pool: \`maxRetries\` must be a non-negative integer, got ${options.maxRetries}`);
  }
}
