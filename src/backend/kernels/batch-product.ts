import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapOffsetOf } from './heap.ts';
import { runNativeCall } from './native-threads.ts';

/** One product of the batch: c[i] = op(a[i]) op(b[i]), op(a[i]) [m, k] and op(b[i]) [k, n]. */
export interface BatchProductShape {
  /** Matrices in c. a and b hold either as many or one, shared by all. */
  batch: number;
  m: number;
  k: number;
  n: number;
  aMatrices: number;
  bMatrices: number;
  transposeA: boolean;
  transposeB: boolean;
}

/** The panels op(b) is packed into: k rows of n rounded up to 8 columns, as native/batch-product.c packs. */
const PANEL_COLUMNS = 8;

/** Output rows of one task, as native/batch-product.c splits a matrix. */
const ROWS_PER_TASK = 64;

/**
 * c = op(a) op(b) for batches of float32 matrices, in our own wasm SIMD kernel (native/batch-product.c)
 * on the backend's threads: attention's products, many small matrices each multiplied once, for which
 * XNNPACK repacks every right matrix and needs transposed left operands copied first.
 */
export function batchProduct(backend: BackendWasm, a: TensorInfo, b: TensorInfo, c: TensorInfo, shape: BatchProductShape): void {
  const { batch, m, k, n, aMatrices, bMatrices, transposeA, transposeB } = shape;
  const blocks = Math.ceil(m / ROWS_PER_TASK);
  const tasks = batch * blocks;
  const at = (t: TensorInfo) => heapOffsetOf(backend, t);
  runNativeCall(backend, {
    kernel: 'batch-product',
    fn: 'batch_product',
    args: [at(a), at(b), at(c), m, k, n, aMatrices === 1 ? 0 : m * k, bMatrices === 1 ? 0 : k * n, transposeA ? 1 : 0, transposeB ? 1 : 0],
    tasks,
    scratchBytes: k * Math.ceil(n / PANEL_COLUMNS) * PANEL_COLUMNS * Float32Array.BYTES_PER_ELEMENT,
    work: batch * m * k * n,
    // A claim packs b[i] anew for each matrix it starts in: whole matrices per claim when there are
    // enough to go round, else about four claims per thread, which still evens out a late helper.
    chunk: (threads) => (batch >= 4 * threads ? blocks : Math.ceil(tasks / (4 * threads))),
  });
}
