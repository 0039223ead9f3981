// The task loop that the calling thread and the helper threads of native-threads.ts share, in plain
// JavaScript so that helper threads (native-worker.mjs) start without a TypeScript loader.

/** Slots of the control array (Int32Array on a SharedArrayBuffer). */
export const SLOT = {
  /** Counts calls; helpers sleep on it between calls. */
  generation: 0,
  /** Helpers that have not yet finished the current call; the caller sleeps on it. */
  pending: 1,
  /** The next task not yet claimed. */
  next: 2,
  tasks: 3,
  /** Tasks claimed at once. */
  chunk: 4,
  /** Heap offset of thread 0's scratch; thread i's is at scratch + i * scratchBytes. */
  scratch: 5,
  scratchBytes: 6,
  argCount: 7,
  /** Helpers that have instantiated the module. */
  started: 8,
  /** Which of the pool's exports the call runs. */
  fn: 9,
  /** The export's own arguments, before (scratch, first, last). */
  args: 10,
};

export const MAX_ARGS = 16;

/** Claims chunks of tasks until none are left, running the call's export (...args, scratch, first, last) on each. */
export function runClaimedTasks(control, exports, thread) {
  const run = exports[control[SLOT.fn]];
  const args = Array.from(control.subarray(SLOT.args, SLOT.args + control[SLOT.argCount]));
  const [tasks, chunk] = [control[SLOT.tasks], control[SLOT.chunk]];
  const scratch = control[SLOT.scratch] + thread * control[SLOT.scratchBytes];
  for (let first = Atomics.add(control, SLOT.next, chunk); first < tasks; first = Atomics.add(control, SLOT.next, chunk)) {
    run(...args, scratch, first, Math.min(first + chunk, tasks));
  }
}
