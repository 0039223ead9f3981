import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { MetricsLog, readMetrics } from '../../src/run/metrics.ts';

let path: string;
beforeEach(() => {
  path = join(mkdtempSync(join(tmpdir(), 'metrics-')), 'run', 'metrics.jsonl');
});

const lines = () => readFileSync(path, 'utf8').split('\n');

describe('MetricsLog', () => {
  it('appends one JSON line per record, readable at once', () => {
    const log = MetricsLog.open(path);
    log.append({ step: 1, loss: 2.5, lr: 1e-4 });
    expect(lines()).toEqual(['{"step":1,"loss":2.5,"lr":0.0001}', '']);
    log.append({ step: 1, val_loss: 2.75 });
    log.append({ step: 2, loss: 2.25, note: 'x', ok: true, gap: null });
    log.close();
    expect(readMetrics(path)).toEqual([
      { step: 1, loss: 2.5, lr: 1e-4 },
      { step: 1, val_loss: 2.75 },
      { step: 2, loss: 2.25, note: 'x', ok: true, gap: null },
    ]);
  });

  it('continues an existing log and knows its last step', () => {
    const first = MetricsLog.open(path);
    first.append({ step: 3, loss: 1 });
    first.close();
    const second = MetricsLog.open(path);
    expect(second.lastStep).toBe(3);
    second.append({ step: 4, loss: 0.5 });
    second.close();
    expect(readMetrics(path).map((r) => r.step)).toEqual([3, 4]);
  });

  it('refuses steps that go back or are not whole', () => {
    const log = MetricsLog.open(path);
    log.append({ step: 5 });
    expect(() => log.append({ step: 4 })).toThrow('step 4 comes after step 5');
    expect(() => log.append({ step: 5.5 })).toThrow('step must be an integer >= 0, got 5.5');
    log.close();
    expect(() => log.append({ step: 6 })).toThrow('metrics log is closed');
  });

  it('truncateAfterStep removes exactly the steps after the resumed checkpoint', () => {
    const log = MetricsLog.open(path);
    for (let step = 1; step <= 6; step++) {
      log.append({ step, loss: 10 - step });
      if (step % 2 === 0) log.append({ step, val_loss: 20 - step });
    }
    log.truncateAfterStep(4);
    expect(log.lastStep).toBe(4);
    // The resumed run writes steps 5 and 6 again: each step appears once, with the new values.
    log.append({ step: 5, loss: 0.5 });
    log.append({ step: 6, loss: 0.25 });
    log.close();
    const records = readMetrics(path);
    expect(records.filter((r) => 'loss' in r).map((r) => [r.step, r.loss])).toEqual([
      [1, 9], [2, 8], [3, 7], [4, 6], [5, 0.5], [6, 0.25],
    ]);
    expect(records.filter((r) => 'val_loss' in r).map((r) => r.step)).toEqual([2, 4]);
  });

  it('truncateAfterStep(0) empties the log, and a step beyond the end keeps everything', () => {
    const log = MetricsLog.open(path);
    log.append({ step: 1 });
    log.truncateAfterStep(7);
    expect(readMetrics(path)).toHaveLength(1);
    log.truncateAfterStep(0);
    expect(readFileSync(path, 'utf8')).toBe('');
    expect(log.lastStep).toBeUndefined();
    log.close();
  });
});

describe('repair on open', () => {
  const good = '{"step":1,"loss":3}\n{"step":2,"loss":2}\n';

  it.each([
    ['a line cut off mid-write', '{"step":3,"lo'],
    ['a complete but unparsable last line', '{"step":3,"lo\n'],
    ['zero bytes left by a power loss', '\0\0\0\0\n\0\0'],
  ])('drops %s and appends after the good lines', (_, tail) => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, good + tail);
    const log = MetricsLog.open(path);
    expect(log.lastStep).toBe(2);
    log.append({ step: 3, loss: 1 });
    log.close();
    expect(readFileSync(path, 'utf8')).toBe(`${good}{"step":3,"loss":1}\n`);
  });

  it('readMetrics ignores an unfinished last line without changing the file', () => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${good}{"step":3`);
    expect(readMetrics(path).map((r) => r.step)).toEqual([1, 2]);
    expect(readFileSync(path, 'utf8')).toBe(`${good}{"step":3`);
  });

  it('throws, naming the line, when a bad line is followed by good ones', () => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `{"step":1}\n{"loss":2}\n{"step":3}\n`);
    expect(() => readMetrics(path)).toThrow(`${path}:2: not a metrics record`);
    expect(() => MetricsLog.open(path)).toThrow(`${path}:2: not a metrics record`);
  });

  it('refuses a log whose steps go back', () => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `{"step":1}\n{"step":3}\n{"step":2}\n`);
    expect(() => MetricsLog.open(path)).toThrow(`${path}:3: step 2 after a later step`);
  });
});
