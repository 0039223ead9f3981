import { Worker } from 'node:worker_threads';
import { getThreadsCount, type BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { MAX_ARGS, SLOT, runClaimedTasks } from './native-tasks.mjs';
import { heapOffsetOf } from './heap.ts';
import { NATIVE_EXPORTS, nativeModule, type NativeKernelName, type NativeModule } from './native-module.ts';
import { THREADED_MIN_WORK } from '../thread-choice.ts';

const WORKER = new URL('./native-worker.mjs', import.meta.url);

/** How long the first call waits for helper threads to start. */
const HELPER_START_LIMIT_MS = 5_000;

/**
 * Runs exports of a native module over a range of tasks on the calling thread and `threads - 1` helper
 * threads that share the backend's memory, as XNNPACK's pool does for the backend's own kernels. Each
 * export takes (...args, scratch, first, last) and runs tasks [first, last); threads claim chunks of
 * tasks from a shared counter, so a helper that wakes late takes fewer. Helpers sleep in Atomics.wait
 * between calls and never keep the process alive.
 */
export class NativeThreads {
  private readonly control = new Int32Array(new SharedArrayBuffer((SLOT.args + MAX_ARGS) * Int32Array.BYTES_PER_ELEMENT));
  private readonly helpers: Worker[];

  /**
   * `exports` are the calling thread's functions for `exportNames` of the module (a test may wrap them);
   * helpers instantiate the module and look the names up.
   */
  constructor(
    private readonly exports: readonly ((...args: number[]) => void)[],
    native: NativeModule<unknown>,
    exportNames: readonly string[],
    readonly threads: number,
  ) {
    this.helpers = Array.from({ length: threads - 1 }, (_, i) => {
      const workerData = { module: native.module, memory: native.memory, exportNames, control: this.control.buffer, thread: i + 1 };
      const worker = new Worker(WORKER, { workerData, execArgv: [] });
      worker.unref();
      return worker;
    });
    // Started helpers, so that their start-up (tens of milliseconds of CPU) does not compete with the
    // first calls. The wait has a limit: a helper that starts later joins the call it finds.
    const deadline = performance.now() + HELPER_START_LIMIT_MS;
    for (let started = 0; started < this.helpers.length && performance.now() < deadline; started = Atomics.load(this.control, SLOT.started)) {
      Atomics.wait(this.control, SLOT.started, started, deadline - performance.now());
    }
  }

  /**
   * Runs tasks [0, tasks) of export `fn` (an index into the pool's exports) in chunks of `chunk`; thread i's
   * scratch starts at scratch + i * scratchBytes.
   */
  runTasks(fn: number, args: number[], tasks: number, chunk: number, scratch: number, scratchBytes: number): void {
    if (args.length > MAX_ARGS) throw new Error(`NativeThreads: at most ${MAX_ARGS} arguments, got ${args.length}`);
    const control = this.control;
    control[SLOT.fn] = fn;
    control.set(args, SLOT.args);
    control[SLOT.argCount] = args.length;
    control[SLOT.tasks] = tasks;
    control[SLOT.chunk] = chunk;
    control[SLOT.scratch] = scratch;
    control[SLOT.scratchBytes] = scratchBytes;
    Atomics.store(control, SLOT.next, 0);
    Atomics.store(control, SLOT.pending, this.helpers.length);
    Atomics.add(control, SLOT.generation, 1);
    Atomics.notify(control, SLOT.generation);
    runClaimedTasks(control, this.exports, 0);
    for (let pending = Atomics.load(control, SLOT.pending); pending !== 0; pending = Atomics.load(control, SLOT.pending)) {
      Atomics.wait(control, SLOT.pending, pending);
    }
  }
}

/** One call of a native export over tasks [0, tasks). */
export interface NativeCall<Kernel extends NativeKernelName> {
  kernel: Kernel;
  fn: (typeof NATIVE_EXPORTS)[Kernel][number];
  /** The export's arguments before (scratch, first, last). */
  args: number[];
  tasks: number;
  /** Bytes of scratch each thread needs (0: none). */
  scratchBytes: number;
  /** Multiply-adds of the whole call: small calls stay on this thread. */
  work: number;
  /** Tasks a thread claims at once, given the thread count. */
  chunk(threads: number): number;
}

/**
 * Runs a call on the backend's threads: this one and helpers when the backend is threaded and the call
 * large enough, else this thread alone. Each thread gets its own scratch, freed after the call.
 */
export function runNativeCall<Kernel extends NativeKernelName>(backend: BackendWasm, call: NativeCall<Kernel>): void {
  const native = nativeModule<Record<string, (...args: number[]) => void>>(backend, call.kernel);
  const pool = native.shared && getThreadsCount() > 1 && call.work >= THREADED_MIN_WORK ? threadsOf(backend, call.kernel, native) : null;
  const threads = pool?.threads ?? 1;
  const scratch = call.scratchBytes > 0 ? backend.makeOutput([(threads * call.scratchBytes) / 4], 'float32') : null;
  try {
    const at = scratch === null ? 0 : heapOffsetOf(backend, scratch);
    const names: readonly string[] = NATIVE_EXPORTS[call.kernel];
    if (pool === null) native.exports[call.fn](...call.args, at, 0, call.tasks);
    else pool.runTasks(names.indexOf(call.fn), call.args, call.tasks, call.chunk(threads), at, call.scratchBytes);
  } finally {
    if (scratch !== null) backend.disposeData(scratch.dataId);
  }
}

const pools = new WeakMap<object, Map<NativeKernelName, NativeThreads>>();

function threadsOf(backend: BackendWasm, kernel: NativeKernelName, native: NativeModule<Record<string, (...args: number[]) => void>>): NativeThreads {
  let byKernel = pools.get(backend.wasm);
  if (byKernel === undefined) pools.set(backend.wasm, (byKernel = new Map()));
  let pool = byKernel.get(kernel);
  if (pool === undefined) {
    const names = NATIVE_EXPORTS[kernel];
    pool = new NativeThreads(names.map((name) => native.exports[name]), native, names, getThreadsCount());
    byKernel.set(kernel, pool);
  }
  return pool;
}
