import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import type { BackendOutcome } from './types.ts';
import { guardWasmAllocations } from './wasm-faults.ts';
import { initThreadedWasm, threadSupportProblem } from './wasm-threads.ts';

/** The tfjs wasm build caps its thread pool at 8 (and emscripten starts 8 workers). */
export const MAX_WASM_THREADS = 8;

const THREADED_INIT_TIMEOUT_MS = 30_000;

/** The environment variable that sets the wasm thread count, over the default. */
export const THREADS_ENV = 'SLM_TRAIN_THREADS';

/**
 * SLM_TRAIN_THREADS when set, else one thread per CPU this process may use, within the build's limit:
 * on an idle 2-CPU machine 2 threads train the benchmark model 1.45x faster than 1 and decode as fast
 * (README, Benchmarks); on a machine busy with other work, fewer threads can win, hence the override.
 */
export function defaultWasmThreads(env: NodeJS.ProcessEnv = process.env): number {
  const set = env[THREADS_ENV];
  if (set === undefined || set === '') return Math.min(availableParallelism(), MAX_WASM_THREADS);
  const threads = Number(set);
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_WASM_THREADS) {
    throw new RangeError(`${THREADS_ENV} must be a whole number of threads from 1 to ${MAX_WASM_THREADS}, got "${set}"`);
  }
  return threads;
}

export interface WasmStatus {
  threads: number;
  simd: boolean;
  /** Why fewer threads run than were asked for, or null. */
  note: string | null;
}

export async function tryWasm(requestedThreads: number): Promise<BackendOutcome> {
  try {
    const status = await initWasm(requestedThreads);
    return { ok: true, reason: describeWasm(status), threads: status.threads };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

export function describeWasm({ threads, simd, note }: WasmStatus): string {
  const build = `loaded: ${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'}`;
  return note === null ? build : `${build} (${note})`;
}

/**
 * Makes wasm the current backend with up to `requestedThreads` threads, falling back to one thread
 * when the threaded build cannot run. The thread count is fixed once wasm is initialized in a process.
 */
export async function initWasm(requestedThreads: number): Promise<WasmStatus> {
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean;
  const threads = Math.min(requestedThreads, MAX_WASM_THREADS);
  if (tf.engine().registry.wasm !== undefined) return reuseInitialized(threads, simd);
  let note =
    threads < requestedThreads
      ? `${requestedThreads} threads asked for; the tfjs wasm build runs at most ${MAX_WASM_THREADS}`
      : null;
  if (threads > 1) {
    const problem = (await threadSupportProblem()) ?? (await initThreadedWasm(threads, THREADED_INIT_TIMEOUT_MS));
    if (problem === null) {
      guardWasmAllocations(tf.backend());
      return { threads: getThreadsCount(), simd, note };
    }
    note = `multithreading unavailable: ${problem}`;
  }
  await initSingleThreaded();
  return { threads: 1, simd, note };
}

async function reuseInitialized(threads: number, simd: boolean): Promise<WasmStatus> {
  if (!(await tf.setBackend('wasm'))) throw new Error("tf.setBackend('wasm') failed; tfjs logged the cause above");
  const actual = getThreadsCount();
  const note =
    actual === threads
      ? null
      : `wasm was already initialized in this process with ${actual} thread${actual === 1 ? '' : 's'}, and its thread count is fixed from then on`;
  return { threads: actual, simd, note };
}

async function initSingleThreaded(): Promise<void> {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  if (!(await tf.setBackend('wasm'))) throw new Error("tf.setBackend('wasm') failed; tfjs logged the cause above");
  guardWasmAllocations(tf.backend());
}
