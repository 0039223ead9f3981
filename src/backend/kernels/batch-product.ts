import type { TensorInfo } from '@tensorflow/tfjs-core';
import { getThreadsCount, type BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapOffsetOf, nativeModule } from './native-module.ts';
import { NativeThreads } from './native-threads.ts';

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

type BatchProductExport = (...args: number[]) => void;

interface BatchProductExports {
  batch_product: BatchProductExport;
  rows_per_task(): number;
}

/** Below this many multiply-adds a call runs on the calling thread alone: waking helpers costs more. */
const THREADED_MIN_MACS = 1 << 20;

/** The panels op(b[i]) is packed into: k rows of n rounded up to 8 columns, as native/batch-product.c packs. */
const PANEL_COLUMNS = 8;

/**
 * c = op(a) op(b) for batches of float32 matrices, in our own wasm SIMD kernel (native/batch-product.c)
 * on the backend's threads: attention's products, many small matrices each multiplied once, for which
 * XNNPACK repacks every right matrix and needs transposed left operands copied first.
 */
export function batchProduct(backend: BackendWasm, a: TensorInfo, b: TensorInfo, c: TensorInfo, shape: BatchProductShape): void {
  const { batch, m, k, n, aMatrices, bMatrices, transposeA, transposeB } = shape;
  const native = nativeModule<BatchProductExports>(backend, 'batch-product');
  const pool = helperThreads(backend, batch * m * k * n);
  const threads = pool?.threads ?? 1;
  const blocks = Math.ceil(m / native.exports.rows_per_task());
  const panelValues = k * Math.ceil(n / PANEL_COLUMNS) * PANEL_COLUMNS;
  const scratch = backend.makeOutput([threads * panelValues], 'float32');
  try {
    const at = (t: TensorInfo) => heapOffsetOf(backend, t);
    const args = [at(a), at(b), at(c), m, k, n, aMatrices === 1 ? 0 : m * k, bMatrices === 1 ? 0 : k * n, transposeA ? 1 : 0, transposeB ? 1 : 0];
    const tasks = batch * blocks;
    if (pool === null) {
      native.exports.batch_product(...args, at(scratch), 0, tasks);
    } else {
      // A claim packs b[i] anew for each matrix it starts in: whole matrices per claim when there are
      // enough to go round, else about four claims per thread, which still evens out a late helper.
      const chunk = batch >= 4 * threads ? blocks : Math.ceil(tasks / (4 * threads));
      pool.runTasks(args, tasks, chunk, at(scratch), panelValues * Float32Array.BYTES_PER_ELEMENT);
    }
  } finally {
    backend.disposeData(scratch.dataId);
  }
}

const pools = new WeakMap<object, NativeThreads>();

/** The backend's helper threads, when it runs several and the product is large enough to share. */
function helperThreads(backend: BackendWasm, macs: number): NativeThreads | null {
  const native = nativeModule<BatchProductExports>(backend, 'batch-product');
  if (!native.shared || getThreadsCount() < 2 || macs < THREADED_MIN_MACS) return null;
  let pool = pools.get(backend.wasm);
  if (pool === undefined) {
    pool = new NativeThreads(native.exports.batch_product, native, 'batch_product', getThreadsCount());
    pools.set(backend.wasm, pool);
  }
  return pool;
}
