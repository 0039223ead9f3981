import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shapeConfig } from '../../src/bench/model-shapes.ts';
import { BENCH_MODEL } from '../../src/bench/training.ts';
import {
  calibrationCandidates,
  calibrationOf,
  calibrationPath,
  chooseWasmThreads,
  decodingWorkload,
  MAX_WASM_THREADS,
  readThreadCalibration,
  THREADED_MIN_WORK,
  writeThreadCalibration,
} from '../../src/backend/thread-choice.ts';

const dir = await mkdtemp(join(tmpdir(), 'slm-threads-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const allCpus = Math.min(availableParallelism(), MAX_WASM_THREADS);

describe('the wasm thread count', () => {
  it('follows the rule without a calibration: one per CPU for training, 1 for decoding', () => {
    const env = { SLM_TRAIN_CACHE: join(dir, 'none') };
    expect(chooseWasmThreads('training', env)).toEqual({ threads: allCpus, source: 'rule' });
    expect(chooseWasmThreads('decoding', env)).toEqual({ threads: 1, source: 'rule' });
  });

  it('decodes a real-size model on training\'s count: its products are shared among threads, a small model\'s are not', () => {
    expect(decodingWorkload(BENCH_MODEL)).toBe('decoding');
    expect(decodingWorkload(shapeConfig('qwen2.5-0.5b'))).toBe('training');
    expect(decodingWorkload(shapeConfig('llama3.2-1b'))).toBe('training');
    // The boundary is the size from which a native product wakes the helper threads.
    expect(decodingWorkload({ hiddenSize: 1024, intermediateSize: 1024 })).toBe('training');
    expect(decodingWorkload({ hiddenSize: 1024, intermediateSize: 1023 })).toBe('decoding');
    expect(THREADED_MIN_WORK).toBe(1024 * 1024);
  });

  it("takes this machine's calibration, fastest count per workload, cached atomically where the environment says", async () => {
    const env = { SLM_TRAIN_CACHE: join(dir, 'cache') };
    const calibration = calibrationOf([
      { threads: 1, trainingTokensPerSecond: 900, decodingTokensPerSecond: 220 },
      { threads: 2, trainingTokensPerSecond: 1300, decodingTokensPerSecond: 150 },
    ]);
    expect(calibration.best).toEqual({ training: 2, decoding: 1 });
    expect(await writeThreadCalibration(calibration, env)).toBe(join(dir, 'cache', 'wasm-threads.json'));
    expect(readThreadCalibration(env)).toEqual(calibration);
    expect(chooseWasmThreads('training', env)).toEqual({ threads: 2, source: 'calibration' });
    expect(chooseWasmThreads('decoding', env)).toEqual({ threads: 1, source: 'calibration' });
    // SLM_TRAIN_THREADS still wins.
    expect(chooseWasmThreads('decoding', { ...env, SLM_TRAIN_THREADS: '3' })).toEqual({ threads: 3, source: 'SLM_TRAIN_THREADS' });
    expect(chooseWasmThreads('training', { ...env, SLM_TRAIN_THREADS: '' })).toEqual({ threads: 2, source: 'calibration' });
  });

  it("ignores another machine's calibration and an unreadable file", async () => {
    const env = { SLM_TRAIN_CACHE: join(dir, 'other') };
    const path = await writeThreadCalibration({ ...calibrationOf([{ threads: 2, trainingTokensPerSecond: 1, decodingTokensPerSecond: 1 }]), machine: 'another CPU' }, env);
    expect(JSON.parse(await readFile(path, 'utf8')).machine).toBe('another CPU');
    expect(chooseWasmThreads('decoding', env).source).toBe('rule');
    await writeFile(path, '{ not json');
    expect(readThreadCalibration(env)).toBeUndefined();
    expect(chooseWasmThreads('training', env).source).toBe('rule');
  });

  it('caches under XDG_CACHE_HOME, else the home folder', () => {
    expect(calibrationPath({ XDG_CACHE_HOME: '/x/cache' })).toBe('/x/cache/slm-train/wasm-threads.json');
    expect(calibrationPath({})).toMatch(/\.cache\/slm-train\/wasm-threads\.json$/);
  });

  it('tries 1, powers of 2, and every CPU', () => {
    const candidates = calibrationCandidates();
    expect(candidates[0]).toBe(1);
    expect(candidates.at(-1)).toBe(allCpus);
    expect(new Set(candidates).size).toBe(candidates.length);
  });

  it('names the variable and the range when the value is not a thread count', () => {
    for (const bad of ['0', '2.5', 'two', '9']) {
      expect(() => chooseWasmThreads('training', { SLM_TRAIN_THREADS: bad })).toThrow(`SLM_TRAIN_THREADS must be a whole number of threads from 1 to 8, got "${bad}"`);
    }
  });
});
