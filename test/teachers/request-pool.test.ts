import { describe, expect, it } from 'vitest';
import { TeacherHttpError, TeacherNetworkError, TeacherTimeoutError } from '../../src/teachers/errors.ts';
import { RequestPool } from '../../src/teachers/request-pool.ts';
import type { RequestPoolOptions } from '../../src/teachers/request-pool.ts';
import { backoffDelayMs, parseRetryAfter } from '../../src/teachers/retry-policy.ts';
import { Rng } from '../../src/util/rng.ts';
import { fakeClock, until } from './fake-teacher-server.ts';

function pool(overrides: Partial<RequestPoolOptions> = {}) {
  const clock = fakeClock();
  const rng = new Rng(7);
  const created = new RequestPool({
    endpoints: ['http://a'], concurrency: 4, timeoutMs: 1000, maxRetries: 3, backoffBaseMs: 100, backoffMaxMs: 1000,
    clock, random: () => rng.next(), ...overrides,
  });
  return { pool: created, clock };
}

/** A task that throws the given errors in turn, then answers 'ok'. */
function failingThen(errors: Error[]) {
  let calls = 0;
  return async () => {
    const error = errors[calls++];
    if (error) throw error;
    return 'ok';
  };
}

describe('RequestPool retries', () => {
  it('retries 5xx and network errors with full-jitter backoff drawn from the injected random', async () => {
    const { pool: p, clock } = pool();
    const errors = [new TeacherHttpError('http://a/x', 503, '', undefined), new TeacherNetworkError('http://a/x', new Error('reset'))];
    await expect(p.run(failingThen(errors))).resolves.toBe('ok');
    const replay = new Rng(7);
    const expected = [0, 1].map((retry) => backoffDelayMs(retry, 100, 1000, () => replay.next()));
    expect(clock.sleeps).toEqual(expected);
    expect(expected[0]).toBe(Math.floor(new Rng(7).next() * 100));
    expect(p.stats()).toMatchObject({ requests: 3, retries: 2, failures: 0, waitMs: expected[0] + expected[1] });
  });

  it('waits exactly what Retry-After says on 429', async () => {
    const { pool: p, clock } = pool();
    await p.run(failingThen([new TeacherHttpError('http://a/x', 429, '', 1000)]));
    expect(clock.sleeps).toEqual([1000]);
  });

  it('does not retry a 400', async () => {
    const { pool: p } = pool();
    await expect(p.run(failingThen([new TeacherHttpError('http://a/x', 400, 'bad', undefined)]))).rejects.toThrow(/HTTP 400/);
    expect(p.stats()).toMatchObject({ requests: 1, retries: 0, failures: 1 });
  });

  it('gives up after maxRetries and rethrows the last error', async () => {
    const { pool: p } = pool({ maxRetries: 2 });
    const errors = Array.from({ length: 5 }, () => new TeacherHttpError('http://a/x', 500, '', undefined));
    await expect(p.run(failingThen(errors))).rejects.toBeInstanceOf(TeacherHttpError);
    expect(p.stats()).toMatchObject({ requests: 3, retries: 2, failures: 1 });
  });

  it('caps the exponential ceiling at backoffMaxMs', () => {
    expect(backoffDelayMs(10, 100, 1000, () => 0.999)).toBe(999);
    expect(backoffDelayMs(2, 100, 1000, () => 0.5)).toBe(200);
  });
});

describe('RequestPool scheduling', () => {
  it('uses endpoints round robin, a retry going to the next one', async () => {
    const { pool: p } = pool({ endpoints: ['http://a', 'http://b'] });
    const seen: string[] = [];
    let failNext = true;
    const task = async ({ endpoint }: { endpoint: string }) => {
      seen.push(endpoint);
      if (failNext) {
        failNext = false;
        throw new TeacherHttpError(endpoint, 502, '', undefined);
      }
      return endpoint;
    };
    await p.run(task);
    await p.run(task);
    await p.run(task);
    expect(seen).toEqual(['http://a', 'http://b', 'http://a', 'http://b']);
  });

  it('never has more than `concurrency` attempts in flight', async () => {
    const { pool: p } = pool({ concurrency: 3 });
    let inFlight = 0;
    let most = 0;
    const task = async () => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 2));
      inFlight--;
      return 1;
    };
    await Promise.all(Array.from({ length: 12 }, () => p.run(task, (n) => n)));
    expect(most).toBe(3);
    expect(p.stats().tokens).toBe(12);
  });

  it('gives a slot to the next request once an answer is received, while that answer is still being parsed', async () => {
    const { pool: p } = pool({ concurrency: 1 });
    const events: string[] = [];
    let finishParsing = () => {};
    const parsing = new Promise<void>((resolve) => (finishParsing = resolve));
    const first = p.run(async (attempt) => {
      events.push('first sent');
      attempt.received();
      attempt.received(); // reported twice: still one slot back
      await parsing;
      events.push('first parsed');
      return 1;
    });
    const second = p.run(async () => {
      events.push('second sent');
      return 2;
    });
    const third = p.run(async () => {
      events.push('third sent');
      return 3;
    });
    await until(() => events.includes('third sent'));
    expect(events).toEqual(['first sent', 'second sent', 'third sent']);
    finishParsing();
    expect(await Promise.all([first, second, third])).toEqual([1, 2, 3]);
    // With the slot given back early, the pool still holds at most `concurrency` requests on the wire.
    let inFlight = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 6 }, () =>
        p.run(async (attempt) => {
          most = Math.max(most, ++inFlight);
          await new Promise((resolve) => setTimeout(resolve, 1));
          inFlight--;
          attempt.received();
          await new Promise((resolve) => setTimeout(resolve, 1));
        }),
      ),
    );
    expect(most).toBe(1);
  });

  it('starts at most requestsPerMinute attempts in any 60 s window', async () => {
    const { pool: p, clock } = pool({ requestsPerMinute: 2 });
    const starts: number[] = [];
    await Promise.all(Array.from({ length: 5 }, () => p.run(async () => starts.push(clock.now()))));
    const origin = starts[0];
    expect(starts.map((t) => t - origin)).toEqual([0, 0, 60_000, 60_000, 120_000]);
  });

  it('times out an attempt that hangs, aborts its signal, and retries it', async () => {
    const { pool: p, clock } = pool({ timeoutMs: 20, maxRetries: 1 });
    const signals: AbortSignal[] = [];
    const hang = ({ signal }: { signal: AbortSignal }) => {
      signals.push(signal);
      return new Promise<never>(() => {});
    };
    const run = p.run(hang);
    for (const started of [1, 2]) {
      await until(() => signals.length === started);
      clock.fireTimers();
    }
    await expect(run).rejects.toThrow(/timed out after 20 ms/);
    expect(signals.map((s) => s.aborted)).toEqual([true, true]);
    expect(signals[0].reason).toBeInstanceOf(TeacherTimeoutError);
    expect(p.stats()).toMatchObject({ requests: 2, retries: 1, timeouts: 2, failures: 1 });
  });

  it('rejects bad settings naming the field', () => {
    expect(() => pool({ concurrency: 0 })).toThrow(/`concurrency` must be a positive integer/);
    expect(() => pool({ endpoints: [] })).toThrow(/`endpoints`/);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2025, 0, 1, 12, 0, 0);
  it('reads delay-seconds and HTTP-dates', () => {
    expect(parseRetryAfter('1', now)).toBe(1000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 11:00:00 GMT', now)).toBe(0);
  });
  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});
