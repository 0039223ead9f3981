import { Worker } from 'node:worker_threads';
import { MAX_ARGS, SLOT, runClaimedTasks } from './native-tasks.mjs';
import type { NativeModule } from './native-module.ts';

const WORKER = new URL('./native-worker.mjs', import.meta.url);

/** How long the first call waits for helper threads to start. */
const HELPER_START_LIMIT_MS = 5_000;

/**
 * Runs one export of a native module over a range of tasks on the calling thread and `threads - 1`
 * helper threads that share the backend's memory, as XNNPACK's pool does for the backend's own kernels.
 * The export takes (...args, scratch, first, last) and runs tasks [first, last); threads claim chunks of
 * tasks from a shared counter, so a helper that wakes late takes fewer. Helpers sleep in Atomics.wait
 * between calls and never keep the process alive.
 */
export class NativeThreads {
  private readonly control = new Int32Array(new SharedArrayBuffer((SLOT.args + MAX_ARGS) * Int32Array.BYTES_PER_ELEMENT));
  private readonly helpers: Worker[];

  constructor(
    private readonly run: (...args: number[]) => void,
    native: NativeModule<unknown>,
    exportName: string,
    readonly threads: number,
  ) {
    this.helpers = Array.from({ length: threads - 1 }, (_, i) => {
      const workerData = { module: native.module, memory: native.memory, exportName, control: this.control.buffer, thread: i + 1 };
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

  /** Runs tasks [0, tasks) in chunks of `chunk`; thread i's scratch starts at scratch + i * scratchBytes. */
  runTasks(args: number[], tasks: number, chunk: number, scratch: number, scratchBytes: number): void {
    if (args.length > MAX_ARGS) throw new Error(`NativeThreads: at most ${MAX_ARGS} arguments, got ${args.length}`);
    const control = this.control;
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
    runClaimedTasks(control, this.run, 0);
    for (let pending = Atomics.load(control, SLOT.pending); pending !== 0; pending = Atomics.load(control, SLOT.pending)) {
      Atomics.wait(control, SLOT.pending, pending);
    }
  }
}
