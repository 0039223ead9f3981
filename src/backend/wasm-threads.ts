import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Worker, WorkerOptions } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';

// How tfjs-backend-wasm 4.22's threaded build is made to run under Node, which tfjs disables
// (WASM_HAS_MULTITHREAD_SUPPORT is false when IS_NODE), without touching node_modules:
// 1. tfjs gives emscripten its pthread worker script as a `blob:` URL that worker_threads refuses.
//    While the backend initializes, worker_threads.Worker (which emscripten looks up then) starts
//    wasm-pthread-worker.cjs for such URLs instead: a real file that runs the same worker code (and
//    fixes how it loads the main script), without the parent's execArgv: a tsx loader started in
//    each of the 8 workers made initialization several times slower.
// 2. tfjs sizes its pool as min(threads, os.cpus().length / 2), assuming two hyperthreads per core,
//    which leaves one thread on a 2-CPU machine; os.cpus reports enough CPUs during initialization.
// 3. XNNPACK's pool threads wait for work forever and would keep Node from exiting: they are unref'd.

const require = createRequire(import.meta.url);
const os = require('node:os') as { cpus: () => unknown[] };
const workerThreads = require('node:worker_threads') as { Worker: typeof Worker };

const WASM_OUT = '@tensorflow/tfjs-backend-wasm/wasm-out/';
const WORKER_ASSETS = ['tfjs-backend-wasm-threaded-simd.worker.js', 'tfjs-backend-wasm-threaded-simd.js'];
export const PTHREAD_WORKER = fileURLToPath(new URL('./wasm-pthread-worker.cjs', import.meta.url));

/** Emscripten's pool of pthread workers, on the threaded module. */
interface PThreadPool {
  runningWorkers: Worker[];
  unusedWorkers: Worker[];
}

/** Why the threaded build cannot run in this process, or null when it can. */
export async function threadSupportProblem(): Promise<string | null> {
  if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) {
    return 'the threaded wasm build needs WebAssembly SIMD, which this Node lacks';
  }
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch {
    return 'this Node cannot create shared WebAssembly memory';
  }
  if (!existsSync(PTHREAD_WORKER)) return `the worker entry point ${PTHREAD_WORKER} is missing`;
  for (const asset of WORKER_ASSETS) {
    try {
      require.resolve(WASM_OUT + asset);
    } catch {
      return `${WASM_OUT}${asset} is missing from the installed package`;
    }
  }
  return null;
}

/**
 * Initializes the wasm backend from its threaded-SIMD build with `threads` threads. Returns why it
 * failed, or null. Call only while the wasm backend is not yet initialized.
 */
export async function initThreadedWasm(threads: number, timeoutMs: number): Promise<string | null> {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  setThreadsCount(threads);
  const restore = installInitShims(threads);
  try {
    const result = await withTimeout(tf.setBackend('wasm'), timeoutMs);
    if (result === 'timeout') return `the threaded build did not initialize within ${timeoutMs / 1000} s`;
    if (!result) return "tf.setBackend('wasm') failed with the threaded build; tfjs logged the cause above";
  } finally {
    restore();
  }
  releaseWorkers();
  return null;
}

function installInitShims(threads: number): () => void {
  const { Worker } = workerThreads;
  const cpus = os.cpus;
  workerThreads.Worker = class PthreadWorker extends Worker {
    constructor(script: string | URL, options?: WorkerOptions) {
      if (typeof script !== 'string' || !script.startsWith('blob:')) {
        super(script, options);
        return;
      }
      URL.revokeObjectURL(script);
      super(PTHREAD_WORKER, { ...options, execArgv: [] });
    }
  };
  const real = cpus();
  if (real.length < 2 * threads) os.cpus = () => Array.from({ length: 2 * threads }, () => real[0]);
  return () => {
    workerThreads.Worker = Worker;
    os.cpus = cpus;
  };
}

function releaseWorkers(): void {
  const backend = tf.engine().registry.wasm as unknown as { wasm?: { PThread?: PThreadPool } } | undefined;
  const pool = backend?.wasm?.PThread;
  if (pool === undefined) return;
  for (const worker of pool.runningWorkers) worker.unref();
  // Emscripten starts 8 workers up front; those XNNPACK did not take (about 8 MB each) would never
  // be used, since the pool is sized once at initialization.
  for (const worker of pool.unusedWorkers) void worker.terminate();
  pool.unusedWorkers.length = 0;
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
