import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapOffsetOf, nativeModule } from './native-module.ts';

/** Kernel names of `bf16RowsProduct` and `f32RowsProduct` (src/model/fused-ops.ts), registered for wasm only. */
export const BF16_ROWS_PRODUCT = 'SlmBf16RowsProduct';
export const F32_ROWS_PRODUCT = 'SlmF32RowsProduct';

/** Weight rows must hold a multiple of this many values: the native loops read 8 values a step. */
export const ROWS_PRODUCT_ALIGNMENT = 8;

interface NativeProducts {
  bf16_rows_product(w: number, x: number, y: number, scratch: number, mCount: number, rows: number, cols: number): void;
  f32_rows_product(w: number, x: number, y: number, mCount: number, rows: number, cols: number): void;
}

/**
 * x [M, cols] float32 times weight rows [rows, cols]^T -> [M, rows], the products of decoding (few rows
 * against a weight stored [out, in], as Hugging Face files hold it), in a wasm SIMD module of our own
 * (native/rows-product.c) that imports the backend's memory and reads the weights in place, on one thread.
 * XNNPACK, the backend's product, runs them with a one-column right operand at a fraction of the memory's
 * pace, and needs BF16 weights decoded to float32 first. Inference only: no gradient.
 *
 * BF16 rows arrive as int32 [rows, cols / 2] holding the raw pairs: half the bytes of a float32 upload.
 */
function bf16RowsProduct(args: { inputs: { x: TensorInfo; w: TensorInfo }; backend: BackendWasm }): TensorInfo {
  const { inputs, backend } = args;
  const { x, w } = inputs;
  const [M, cols] = checkedShapes(BF16_ROWS_PRODUCT, x, w, 'int32', 2);
  const out = backend.makeOutput([M, w.shape[0]], 'float32');
  // Several input rows: each weight row is widened once into scratch, then multiplied with all of them.
  const scratch = M > 1 ? backend.makeOutput([cols], 'float32') : null;
  try {
    const at = (t: TensorInfo) => heapOffsetOf(backend, t);
    nativeProducts(backend).bf16_rows_product(at(w), at(x), at(out), scratch ? at(scratch) : 0, M, w.shape[0], cols);
  } finally {
    if (scratch) backend.disposeData(scratch.dataId);
  }
  return out;
}

function f32RowsProduct(args: { inputs: { x: TensorInfo; w: TensorInfo }; backend: BackendWasm }): TensorInfo {
  const { inputs, backend } = args;
  const { x, w } = inputs;
  const [M, cols] = checkedShapes(F32_ROWS_PRODUCT, x, w, 'float32', 1);
  const out = backend.makeOutput([M, w.shape[0]], 'float32');
  const at = (t: TensorInfo) => heapOffsetOf(backend, t);
  nativeProducts(backend).f32_rows_product(at(w), at(x), at(out), M, w.shape[0], cols);
  return out;
}

/** [M, cols] of x, once x and w ([rows, cols / valuesPerElement] of `dtype`) are known to fit the native loops. */
function checkedShapes(kernel: string, x: TensorInfo, w: TensorInfo, dtype: 'int32' | 'float32', valuesPerElement: number): [number, number] {
  const [M, cols] = x.shape;
  const fits = x.dtype === 'float32' && w.dtype === dtype && x.shape.length === 2 && w.shape.length === 2;
  if (!fits || w.shape[1] * valuesPerElement !== cols || cols % ROWS_PRODUCT_ALIGNMENT !== 0) {
    throw new Error(
      `${kernel}: expected x float32 [M, cols] and w ${dtype} [rows, cols${valuesPerElement > 1 ? ` / ${valuesPerElement}` : ''}] ` +
        `with cols a multiple of ${ROWS_PRODUCT_ALIGNMENT}, got x ${x.dtype} [${x.shape}] and w ${w.dtype} [${w.shape}]`,
    );
  }
  return [M, cols];
}

function nativeProducts(backend: BackendWasm): NativeProducts {
  return nativeModule<NativeProducts>(backend, 'rows-product').exports;
}

export const bf16RowsProductConfig: KernelConfig = {
  kernelName: BF16_ROWS_PRODUCT,
  backendName: 'wasm',
  kernelFunc: bf16RowsProduct as unknown as KernelFunc,
};

export const f32RowsProductConfig: KernelConfig = {
  kernelName: F32_ROWS_PRODUCT,
  backendName: 'wasm',
  kernelFunc: f32RowsProduct as unknown as KernelFunc,
};
