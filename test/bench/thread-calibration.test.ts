/** The calibration end to end: real processes per thread count, a cache the next process reads. */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { calibrationCandidates, chooseWasmThreads, type ThreadCalibration } from '../../src/backend/thread-choice.ts';

const root = join(import.meta.dirname, '../..');
const cache = await mkdtemp(join(tmpdir(), 'slm-calibration-'));
afterAll(() => rm(cache, { recursive: true, force: true }));

describe('slm-train bench --calibrate-threads', () => {
  it('times both workloads at every candidate count, caches the fastest of each, and later processes start with them', async () => {
    const env = { ...process.env, SLM_TRAIN_CACHE: cache, SLM_TRAIN_THREADS: '' };
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile('node', ['bin/slm-train.js', 'bench', '--calibrate-threads', '--json'], { cwd: root, env }, (error, out, err) => (error ? reject(new Error(err)) : resolve(out))),
    );
    const result = JSON.parse(stdout) as ThreadCalibration & { path: string };
    expect(result.path).toBe(join(cache, 'wasm-threads.json'));
    expect(result.measurements.map((m) => m.threads)).toEqual(calibrationCandidates());
    for (const m of result.measurements) {
      expect(m.trainingTokensPerSecond).toBeGreaterThan(0);
      expect(m.decodingTokensPerSecond).toBeGreaterThan(0);
    }
    const fastest = (rate: (m: ThreadCalibration['measurements'][number]) => number) =>
      result.measurements.reduce((best, m) => (rate(m) > rate(best) ? m : best)).threads;
    expect(result.best).toEqual({ training: fastest((m) => m.trainingTokensPerSecond), decoding: fastest((m) => m.decodingTokensPerSecond) });
    const { path: _, ...cached } = result;
    expect(JSON.parse(await readFile(result.path, 'utf8'))).toEqual(cached);
    for (const workload of ['training', 'decoding'] as const) {
      expect(chooseWasmThreads(workload, { SLM_TRAIN_CACHE: cache })).toEqual({ threads: result.best[workload], source: 'calibration' });
    }
  }, 120_000);
});
