import { readFileSync } from 'node:fs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** The kernel name of `bf16RowsProduct` (src/model/fused-ops.ts), registered for wasm only. */
export const BF16_ROWS_PRODUCT = 'SlmBf16RowsProduct';

/** Weight rows must hold a multiple of this many values: the native loop reads 8 BF16 values a step. */
export const BF16_ROWS_ALIGNMENT = 8;

type NativeProduct = (w: number, x: number, y: number, scratch: number, mCount: number, rows: number, cols: number) => void;

/**
 * x [M, cols] float32 times BF16 weight rows [rows, cols]^T -> [M, rows], reading the weights as they are
 * stored: the rows arrive as int32 [rows, cols / 2] holding the raw BF16 pairs, half the bytes of a float32
 * upload and no decoding on the host. The product runs in a wasm SIMD module of our own (native/bf16-rows.c)
 * that imports the backend's memory, on one thread: it is memory-bound, built for decoding's few rows.
 * Inference only: it has no gradient.
 */
function bf16RowsProduct(args: { inputs: { x: TensorInfo; w: TensorInfo }; backend: BackendWasm }): TensorInfo {
  const { inputs, backend } = args;
  const { x, w } = inputs;
  const [M, cols] = x.shape;
  const [rows, pairs] = w.shape;
  if (x.dtype !== 'float32' || w.dtype !== 'int32' || x.shape.length !== 2 || w.shape.length !== 2 || pairs * 2 !== cols || cols % BF16_ROWS_ALIGNMENT !== 0) {
    throw new Error(`${BF16_ROWS_PRODUCT}: expected x float32 [M, cols] and w int32 [rows, cols / 2] with cols a multiple of 8, got x ${x.dtype} [${x.shape}] and w ${w.dtype} [${w.shape}]`);
  }
  const out = backend.makeOutput([M, rows], 'float32');
  const scratch = M > 1 ? backend.makeOutput([cols], 'float32') : null;
  try {
    const offset = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    nativeProduct(backend)(offset(w), offset(x), offset(out), scratch ? offset(scratch) : 0, M, rows, cols);
  } finally {
    if (scratch) backend.disposeData(scratch.dataId);
  }
  return out;
}

const natives = new WeakMap<object, NativeProduct>();

/** The module instantiated on the backend's memory: the shared-memory build for threaded tfjs, else the plain one. */
function nativeProduct(backend: BackendWasm): NativeProduct {
  let native = natives.get(backend.wasm);
  if (native === undefined) {
    const module = backend.wasm as unknown as { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory } };
    const memory = module.wasmMemory ?? module.asm?.memory;
    if (memory === undefined) throw new Error(`${BF16_ROWS_PRODUCT}: the wasm backend does not expose its memory`);
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const file = new URL(`./native/${shared ? 'bf16-rows-shared' : 'bf16-rows'}.wasm`, import.meta.url);
    const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file)), { env: { memory } });
    native = instance.exports.bf16_rows_product as NativeProduct;
    natives.set(backend.wasm, native);
  }
  return native;
}

export const bf16RowsProductConfig: KernelConfig = {
  kernelName: BF16_ROWS_PRODUCT,
  backendName: 'wasm',
  kernelFunc: bf16RowsProduct as unknown as KernelFunc,
};
