import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import type { BackendOutcome } from './types.ts';
import { guardWasmAllocations } from './wasm-faults.ts';
import { MAX_WASM_THREADS } from './thread-choice.ts';
import { initThreadedWasm, threadSupportProblem } from './wasm-threads.ts';

const THREADED_INIT_TIMEOUT_MS = 30_000;

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
