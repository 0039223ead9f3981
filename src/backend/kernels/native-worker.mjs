// A helper thread of native-threads.ts: instantiates a native module on the backend's shared memory,
// then, for each call the control array announces, runs the tasks it claims and reports when done.
import { workerData } from 'node:worker_threads';
import { SLOT, runClaimedTasks } from './native-tasks.mjs';

const { module, memory, exportNames, control: buffer, thread } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory } });
const exports = exportNames.map((name) => instance.exports[name]);
const control = new Int32Array(buffer);
Atomics.add(control, SLOT.started, 1);
Atomics.notify(control, SLOT.started);
let seen = 0;
for (;;) {
  Atomics.wait(control, SLOT.generation, seen);
  seen = Atomics.load(control, SLOT.generation);
  runClaimedTasks(control, exports, thread);
  if (Atomics.sub(control, SLOT.pending, 1) === 1) Atomics.notify(control, SLOT.pending);
}
