// Float32 matMul throughput of the wasm backend on 1 thread and on N threads.
//   npx tsx src/bench/backend-matmul.ts [--threads N] [--size 1024] [--reps 20]
// Each thread count runs in its own process: wasm's thread count is fixed once it initializes.
// Prints one line per run, then all results as JSON on the last line.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend/index.ts';

interface Measurement {
  threadsAsked: number;
  threads: number;
  size: number;
  reps: number;
  msPerMatMul: number;
  gflops: number;
}

const WARMUP_REPS = 3;

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: String(availableParallelism()) },
    size: { type: 'string', default: '1024' },
    reps: { type: 'string', default: '20' },
    child: { type: 'boolean', default: false },
  },
});
const [threads, size, reps] = [values.threads, values.size, values.reps].map(Number);

if (values.child) {
  console.log(JSON.stringify(await measure(threads, size, reps)));
} else {
  const results = [...new Set([1, threads])].map((t) => runChild(t, size, reps));
  for (const r of results) {
    console.log(`wasm ${r.threads} thread(s): ${r.gflops.toFixed(1)} GFLOP/s (${r.msPerMatMul.toFixed(1)} ms per ${r.size}x${r.size} matMul)`);
  }
  console.log(JSON.stringify({ bench: 'backend-matmul', results }));
}

async function measure(threadsAsked: number, n: number, repeats: number): Promise<Measurement> {
  const report = await initBackend('wasm', { threads: threadsAsked });
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  const run = () => tf.tidy(() => tf.matMul(a, b)).dataSync();
  for (let i = 0; i < WARMUP_REPS; i++) run();
  const start = performance.now();
  for (let i = 0; i < repeats; i++) run();
  const msPerMatMul = (performance.now() - start) / repeats;
  return { threadsAsked, threads: report.threads, size: n, reps: repeats, msPerMatMul, gflops: (2 * n ** 3) / msPerMatMul / 1e6 };
}

function runChild(threadsAsked: number, n: number, repeats: number): Measurement {
  const args = [fileURLToPath(import.meta.url), '--child', '--threads', String(threadsAsked), '--size', String(n), '--reps', String(repeats)];
  const child = spawnSync(process.execPath, [...process.execArgv, ...args], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`bench child with ${threadsAsked} thread(s) failed:\n${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '') as Measurement;
}
