/**
 * How many wasm threads a process starts with. One process has one count (tfjs starts its thread pool
 * once), and the best count depends on the work: on a 2-CPU machine 2 threads train faster than 1, while
 * decoding, a stream of small products, runs faster on 1 (the second thread spins for work beside the
 * main one). So the count is chosen per workload, in this order:
 *   1. SLM_TRAIN_THREADS;
 *   2. the machine's calibration (`slm-train bench --calibrate-threads`), which timed both workloads at
 *      each count and is cached per machine;
 *   3. the rule: one thread per CPU for training, 1 for decoding.
 * Decoding a real-size model is not such a stream: see decodingWorkload.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, homedir } from 'node:os';
import { join } from 'node:path';
import { writeJsonAtomic } from '../util/atomic.ts';

/** The tfjs wasm build caps its thread pool at 8 (and emscripten starts 8 workers). */
export const MAX_WASM_THREADS = 8;

/** The environment variable that sets the wasm thread count, over the calibration and the rule. */
export const THREADS_ENV = 'SLM_TRAIN_THREADS';

/** Where the calibration is cached: $SLM_TRAIN_CACHE, else $XDG_CACHE_HOME/slm-train, else ~/.cache/slm-train. */
export const CACHE_ENV = 'SLM_TRAIN_CACHE';

/**
 * Below this many multiply-adds a native product runs on the calling thread alone, as waking the helper
 * threads costs more (kernels/native-threads.ts); from there up it is shared among the backend's threads.
 */
export const THREADED_MIN_WORK = 1 << 20;

/** Training steps (large products) or decoding (one row at a time). */
export type Workload = 'training' | 'decoding';

export type ThreadSource = typeof THREADS_ENV | 'calibration' | 'rule';

export interface ThreadChoice {
  threads: number;
  source: ThreadSource;
}

/** Tokens per second of each workload at one thread count. */
export interface ThreadMeasurement {
  threads: number;
  trainingTokensPerSecond: number;
  decodingTokensPerSecond: number;
}

export interface ThreadCalibration {
  /** The machine it was measured on: CPU model, CPU count, Node version. */
  machine: string;
  measuredAt: string;
  measurements: ThreadMeasurement[];
  best: Record<Workload, number>;
}

export function chooseWasmThreads(workload: Workload, env: NodeJS.ProcessEnv = process.env): ThreadChoice {
  const set = env[THREADS_ENV];
  if (set !== undefined && set !== '') {
    const threads = Number(set);
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
      throw new RangeError(`${THREADS_ENV} must be a whole number of threads from 1 to ${MAX_WASM_THREADS}, got "${set}"`);
    }
    return { threads, source: THREADS_ENV };
  }
  const calibrated = readThreadCalibration(env)?.best[workload];
  if (calibrated !== undefined) return { threads: calibrated, source: 'calibration' };
  return { threads: workload === 'training' ? Math.min(availableParallelism(), MAX_WASM_THREADS) : 1, source: 'rule' };
}

/**
 * The workload decoding a model of this width is. A small model's decoding is a stream of small products,
 * which the second thread slows; a real-size model's largest products (hidden x intermediate, from a million
 * multiply-adds) are ones the backend shares among its threads (kernels/native-threads.ts), so they take
 * training's count: Qwen2.5-0.5B decoded 8 sequences at 1.3-1.4x and one at 1.0-1.1x on 2 threads against 1.
 */
export function decodingWorkload(model: { hiddenSize: number; intermediateSize: number }): Workload {
  return model.hiddenSize * model.intermediateSize >= THREADED_MIN_WORK ? 'training' : 'decoding';
}

/** The thread counts a calibration tries: 1, 2, 4... up to the CPUs this process may use (at most 8). */
export function calibrationCandidates(): number[] {
  const most = Math.min(availableParallelism(), MAX_WASM_THREADS);
  const candidates = [1];
  for (let threads = 2; threads < most; threads *= 2) candidates.push(threads);
  if (most > 1) candidates.push(most);
  return candidates;
}

/** The calibration from `measurements`: the fastest count of each workload, for this machine. */
export function calibrationOf(measurements: ThreadMeasurement[], measuredAt = new Date()): ThreadCalibration {
  if (measurements.length === 0) throw new RangeError('calibrationOf: no measurements');
  const fastest = (rate: (m: ThreadMeasurement) => number) => measurements.reduce((best, m) => (rate(m) > rate(best) ? m : best)).threads;
  return {
    machine: machineKey(),
    measuredAt: measuredAt.toISOString(),
    measurements,
    best: { training: fastest((m) => m.trainingTokensPerSecond), decoding: fastest((m) => m.decodingTokensPerSecond) },
  };
}

/** This machine's cached calibration, or undefined (none, another machine's, or unreadable). */
export function readThreadCalibration(env: NodeJS.ProcessEnv = process.env): ThreadCalibration | undefined {
  let cached: unknown;
  try {
    cached = JSON.parse(readFileSync(calibrationPath(env), 'utf8'));
  } catch {
    return undefined;
  }
  if (!isCalibration(cached) || cached.machine !== machineKey()) return undefined;
  return cached;
}

export async function writeThreadCalibration(calibration: ThreadCalibration, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const path = calibrationPath(env);
  await writeJsonAtomic(path, calibration);
  return path;
}

export function calibrationPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env[CACHE_ENV] || (env.XDG_CACHE_HOME ? join(env.XDG_CACHE_HOME, 'slm-train') : join(homedir(), '.cache', 'slm-train'));
  return join(dir, 'wasm-threads.json');
}

/** What a calibration holds for: the CPU model and count, and the Node (V8) that runs the wasm. */
export function machineKey(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `${cpu}, ${availableParallelism()} CPUs, Node ${process.versions.node}`;
}

function isCalibration(value: unknown): value is ThreadCalibration {
  const c = value as ThreadCalibration;
  const count = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= MAX_WASM_THREADS;
  return typeof c === 'object' && c !== null && typeof c.machine === 'string' && typeof c.best === 'object' && c.best !== null && count(c.best.training) && count(c.best.decoding);
}
