import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/backend/index.ts';
import type { BatchProductShape } from '../../../src/backend/kernels/batch-product.ts';
import { NativeThreads } from '../../../src/backend/kernels/native-threads.ts';
import { Rng } from '../../../src/util/rng.ts';

const NATIVE = join(import.meta.dirname, '../../../src/backend/kernels/native');
/** Rows of one task in native/batch-product.c. */
const ROWS_PER_TASK = 64;

type Run = (...args: number[]) => void;

/** Operands as stored: a [aMatrices, m, k] or, transposed, [aMatrices, k, m]; b likewise with [k, n]. */
function operands(shape: BatchProductShape, seed: number): { a: Float32Array; b: Float32Array } {
  const rng = new Rng(seed);
  const random = (length: number) => Float32Array.from({ length }, () => rng.normal());
  return { a: random(shape.aMatrices * shape.m * shape.k), b: random(shape.bMatrices * shape.k * shape.n) };
}

/** c = op(a) op(b) in double precision. */
function reference(a: Float32Array, b: Float32Array, { batch, m, k, n, aMatrices, bMatrices, transposeA, transposeB }: BatchProductShape): Float64Array {
  const c = new Float64Array(batch * m * n);
  for (let i = 0; i < batch; i++) {
    const [aAt, bAt] = [aMatrices === 1 ? 0 : i * m * k, bMatrices === 1 ? 0 : i * k * n];
    for (let r = 0; r < m; r++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) sum += a[aAt + (transposeA ? p * m + r : r * k + p)] * b[bAt + (transposeB ? j * k + p : p * n + j)];
        c[i * m * n + r * n + j] = sum;
      }
    }
  }
  return c;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, relative = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  let [scale, worst] = [0, 0];
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThanOrEqual(relative * scale);
}

/** A memory of its own, with a and b written in, room for c and `threads` scratch areas, and guard bytes around. */
function heapFor(shape: BatchProductShape, shared: boolean, threads = 1) {
  const { a, b } = operands(shape, 11);
  const scratchValues = shape.k * Math.ceil(shape.n / 8) * 8;
  const cValues = shape.batch * shape.m * shape.n;
  const offsets = { a: 1024, b: 1024 + a.length * 4, c: 1024 + (a.length + b.length) * 4, scratch: 1024 + (a.length + b.length + cValues) * 4 };
  const end = offsets.scratch + threads * scratchValues * 4;
  const pages = Math.max(2, Math.ceil((end + 1024) / 65536)); // the modules ask for 2 pages at least
  const memory = new WebAssembly.Memory({ initial: pages, maximum: shared ? 65536 : undefined, shared } as WebAssembly.MemoryDescriptor);
  new Float32Array(memory.buffer, offsets.a, a.length).set(a);
  new Float32Array(memory.buffer, offsets.b, b.length).set(b);
  new Float32Array(memory.buffer, offsets.c, cValues).fill(Number.NaN);
  const args = [offsets.a, offsets.b, offsets.c, shape.m, shape.k, shape.n, shape.aMatrices === 1 ? 0 : shape.m * shape.k];
  args.push(shape.bMatrices === 1 ? 0 : shape.k * shape.n, shape.transposeA ? 1 : 0, shape.transposeB ? 1 : 0);
  return {
    memory,
    args,
    scratch: offsets.scratch,
    scratchBytes: scratchValues * 4,
    tasks: shape.batch * Math.ceil(shape.m / ROWS_PER_TASK),
    expected: reference(a, b, shape),
    c: () => new Float32Array(memory.buffer, offsets.c, cValues).slice(),
    guardsUntouched: () => new Uint8Array(memory.buffer, 0, offsets.a).every((x) => x === 0) && new Uint8Array(memory.buffer, end).every((x) => x === 0),
  };
}

function instantiate(memory: WebAssembly.Memory, shared: boolean): { module: WebAssembly.Module; run: Run } {
  const module = new WebAssembly.Module(readFileSync(join(NATIVE, shared ? 'batch-product-shared.wasm' : 'batch-product.wasm')));
  return { module, run: new WebAssembly.Instance(module, { env: { memory } }).exports.batch_product as Run };
}

const shape = (batch: number, m: number, k: number, n: number, transposeA = false, transposeB = false, aMatrices = batch, bMatrices = batch): BatchProductShape => ({
  batch,
  m,
  k,
  n,
  aMatrices,
  bMatrices,
  transposeA,
  transposeB,
});

describe('the native batched product', () => {
  it.each([
    ['whole tiles', shape(2, 8, 16, 16)],
    ['partial tiles and a short inner dimension', shape(3, 7, 5, 13)],
    ['a transposed', shape(3, 7, 5, 13, true)],
    ['b transposed', shape(3, 7, 5, 13, false, true)],
    ['both transposed', shape(3, 7, 5, 13, true, true)],
    ['b transposed, whole panels and a remainder of rows to transpose', shape(2, 9, 10, 24, false, true)],
    ['several row blocks per matrix', shape(2, 130, 33, 24, true, true)],
    ['one a for the whole batch', shape(3, 6, 9, 10, false, true, 1, 3)],
    ['one b for the whole batch', shape(3, 6, 9, 10, true, false, 3, 1)],
  ])('matches a double-precision product, plain and shared builds: %s', (_name, s) => {
    for (const shared of [false, true]) {
      const heap = heapFor(s, shared);
      instantiate(heap.memory, shared).run(...heap.args, heap.scratch, 0, heap.tasks);
      expectClose(heap.c(), heap.expected);
      expect(heap.guardsUntouched(), 'bytes outside a, b, c and the scratch area').toBe(true);
    }
  });

  it('runs only the row blocks of the tasks it is given', () => {
    const s = shape(2, 130, 8, 8); // three blocks per matrix: rows 0-63, 64-127, 128-129
    const heap = heapFor(s, false);
    instantiate(heap.memory, false).run(...heap.args, heap.scratch, 1, 4); // matrix 0 rows 64-129, matrix 1 rows 0-63
    const [c, rowValues] = [heap.c(), s.n];
    const written = (i: number) => !Number.isNaN(c[i]);
    const rowOf = (i: number) => Math.floor(i / rowValues);
    for (let i = 0; i < c.length; i++) {
      const row = rowOf(i);
      const expectedWritten = (row >= 64 && row < 130) || (row >= 130 && row < 130 + 64);
      expect(written(i), `row ${row}`).toBe(expectedWritten);
      if (expectedWritten) expect(Math.abs(c[i] - heap.expected[i])).toBeLessThanOrEqual(1e-4);
    }
  });
});

describe('NativeThreads', () => {
  it('shares a call between the calling thread and its helpers, who take the tasks the caller does not', () => {
    const s = shape(4, 256, 32, 40, true, true);
    const threads = 3;
    const heap = heapFor(s, true, threads);
    const { module, run } = instantiate(heap.memory, true);
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    let [callerTasks, calls] = [0, 0];
    // The caller sleeps through its first chunk, so that the helpers claim the rest.
    const caller: Run = (...args) => {
      if (calls++ === 0) Atomics.wait(sleeper, 0, 0, 1_000);
      callerTasks += args[args.length - 1] - args[args.length - 2];
      run(...args);
    };
    const pool = new NativeThreads([caller], { exports: {}, module, memory: heap.memory, shared: true }, ['batch_product'], threads);
    pool.runTasks(0, heap.args, heap.tasks, 1, heap.scratch, heap.scratchBytes);

    expectClose(heap.c(), heap.expected);
    expect(callerTasks).toBeLessThan(heap.tasks);
    expect(heap.guardsUntouched()).toBe(true);

    // A second call on the same helpers, every task in one chunk.
    new Float32Array(heap.memory.buffer).fill(Number.NaN, heap.args[2] / 4, heap.args[2] / 4 + s.batch * s.m * s.n);
    pool.runTasks(0, heap.args, heap.tasks, heap.tasks, heap.scratch, heap.scratchBytes);
    expectClose(heap.c(), heap.expected);
  });
});

describe('BatchMatMul on the threaded wasm backend', () => {
  it.each([
    ['scores = q k^T', [6, 256, 32], [6, 192, 32], false, true],
    ['context = p v', [6, 256, 192], [6, 192, 32], false, false],
    ['dk = dScores^T q', [6, 256, 192], [6, 256, 32], true, false],
    ['one query matrix against a batch of keys', [1, 96, 64], [5, 200, 64], false, true],
  ])('matches a double-precision product for attention-sized operands: %s', async (_name, aShape, bShape, transposeA, transposeB) => {
    const report = await initBackend('wasm', { threads: 2 });
    expect(report.threads).toBe(2);
    const [aDims, bDims] = [aShape as number[], bShape as number[]];
    const [m, k] = transposeA ? [aDims[2], aDims[1]] : [aDims[1], aDims[2]];
    const n = transposeB ? bDims[1] : bDims[2];
    const s = shape(Math.max(aDims[0], bDims[0]), m, k, n, transposeA as boolean, transposeB as boolean, aDims[0], bDims[0]);
    const { a, b } = operands(s, 5);
    const [left, right] = [tf.tensor3d(a, aDims as [number, number, number]), tf.tensor3d(b, bDims as [number, number, number])];
    const product = tf.matMul(left, right, transposeA as boolean, transposeB as boolean);
    expect(product.shape).toEqual([s.batch, m, n]);
    expectClose(await product.data(), reference(a, b, s));
    tf.dispose([left, right, product]);
  });
});
