import { describe, expect, it } from 'vitest';
import { createProgress, formatDuration, RateTracker, streamLogger } from '../../src/util/progress.ts';

function capture(isTTY = false) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY, columns: 120, write: (text: string) => chunks.push(text) } };
}

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (seconds: number) => (now += seconds * 1000) };
}

describe('createProgress, plain-line mode (stderr is not a terminal)', () => {
  it('prints every N steps with loss, lr, tokens/s and ETA, and always the last step', () => {
    const { chunks, stream } = capture();
    const time = clock();
    const progress = createProgress({ totalSteps: 25, stream, everySteps: 10, everySeconds: 1000, now: time.now });
    for (let step = 1; step <= 25; step++) {
      time.advance(1);
      progress.update({ step, loss: 3 - step / 10, lr: 3e-4, tokens: 100 });
    }
    progress.stop();
    expect(chunks).toEqual([
      'step 10/25 | loss 2.0000 | lr 3.00e-4 | 100 tok/s | eta 15s\n',
      'step 20/25 | loss 1.0000 | lr 3.00e-4 | 100 tok/s | eta 5s\n',
      'step 25/25 | loss 0.5000 | lr 3.00e-4 | 100 tok/s | eta 0s\n',
    ]);
  });

  it('also prints when enough seconds have passed, and counts from the resumed step', () => {
    const { chunks, stream } = capture();
    const time = clock();
    const progress = createProgress({ totalSteps: 100, startStep: 40, stream, everySteps: 50, everySeconds: 30, now: time.now });
    for (let step = 41; step <= 44; step++) {
      time.advance(20);
      progress.update({ step });
    }
    // No pace yet at 42 (the warm-up); at 44, 56 steps to go at 20 s per step.
    expect(chunks).toEqual(['step 42/100\n', 'step 44/100 | eta 18m40s\n']);
  });

  it('takes a total learned later (training by epochs), and prints the last step by it', () => {
    const { chunks, stream } = capture();
    const progress = createProgress({ totalSteps: 0, stream, everySteps: 10, everySeconds: 1000, now: clock().now });
    progress.setTotal(12);
    for (let step = 1; step <= 12; step++) progress.update({ step });
    expect(chunks.map((line) => line.split(' | ')[0])).toEqual(['step 10/12', 'step 12/12']);
  });

  it('passes log lines through', () => {
    const { chunks, stream } = capture();
    const progress = createProgress({ totalSteps: 5, stream });
    progress.info('loaded');
    progress.warn('slow backend');
    expect(chunks).toEqual(['loaded\n', 'slm-train: warning: slow backend\n']);
  });
});

describe('createProgress, --json mode', () => {
  it('shows no progress and no info, but still warnings', () => {
    const { chunks, stream } = capture(true);
    const progress = createProgress({ totalSteps: 5, stream, json: true });
    progress.update({ step: 5, loss: 1 });
    progress.info('hidden');
    progress.warn('shown');
    progress.stop();
    expect(chunks).toEqual(['slm-train: warning: shown\n']);
  });
});

describe('createProgress, bar mode (stderr is a terminal)', () => {
  it('draws a bar with the status and prints log lines above it', () => {
    const { chunks, stream } = capture(true);
    const time = clock();
    const progress = createProgress({ totalSteps: 10, stream, now: time.now });
    for (const step of [3, 4]) {
      time.advance(30); // loading and warm-up: not counted
      progress.update({ step, loss: 2, tokens: 512 });
    }
    time.advance(2);
    progress.update({ step: 5, loss: 1.25, tokens: 512 });
    progress.info('checkpoint saved');
    progress.stop();
    const output = chunks.join('');
    expect(output).toContain('step 5/10 | loss 1.2500 | 256 tok/s | eta 10s');
    expect(output).toContain('checkpoint saved\n');
  });

  it('redraws against a total learned later', () => {
    const { chunks, stream } = capture(true);
    const progress = createProgress({ totalSteps: 0, stream, now: clock().now });
    progress.setTotal(40);
    progress.update({ step: 4 });
    progress.stop();
    expect(chunks.join('')).toContain('step 4/40');
  });
});

describe('RateTracker', () => {
  it('gives no ETA during the warm-up, then the pace of the steps after it: not 29h for a 4-minute run', () => {
    const time = clock();
    const rate = new RateTracker(time.now, 4);
    time.advance(100); // loading the model and data, compiling kernels
    rate.record(1, 1000);
    expect(rate.etaSeconds(1000)).toBeUndefined();
    time.advance(5); // the first backward pass
    rate.record(2, 1000);
    expect(rate.etaSeconds(1000)).toBeUndefined();
    for (let step = 3; step <= 6; step++) {
      time.advance(0.25);
      rate.record(step, 1000);
    }
    expect(rate.tokensPerSecond()).toBe(4000);
    expect(rate.etaSeconds(1000)).toBe(994 * 0.25);
  });

  it('knows nothing before time has passed', () => {
    const rate = new RateTracker(() => 0);
    expect(rate.tokensPerSecond()).toBeUndefined();
    expect(rate.etaSeconds(10)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [59.4, '59s'],
    [60, '1m00s'],
    [723, '12m03s'],
    [3600, '1h00m'],
    [7500, '2h05m'],
  ])('%s s -> %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});

describe('streamLogger', () => {
  it('writes info as is and marks warnings', () => {
    const { chunks, stream } = capture();
    const logger = streamLogger(stream);
    logger.info('a');
    logger.warn('b');
    expect(chunks).toEqual(['a\n', 'slm-train: warning: b\n']);
  });
});
