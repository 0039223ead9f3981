import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapOffsetOf } from './heap.ts';
import { runNativeCall } from './native-threads.ts';

/** Kernel names of `bf16RowsProduct`, `f32RowsProduct` and `quantRowsProduct` (src/model/fused-ops.ts), registered for wasm only. */
export const BF16_ROWS_PRODUCT = 'SlmBf16RowsProduct';
export const F32_ROWS_PRODUCT = 'SlmF32RowsProduct';
export const QUANT_ROWS_PRODUCT = 'SlmQuantRowsProduct';

/**
 * The GGML block formats quant_rows_product reads: the number native/rows-product.c gives each, and its
 * block (values, bytes), as ggml lays them out.
 */
export const QUANT_ROW_FORMATS = {
  Q8_0: { code: 0, blockSize: 32, blockBytes: 34 },
  Q4_K: { code: 1, blockSize: 256, blockBytes: 144 },
  Q6_K: { code: 2, blockSize: 256, blockBytes: 210 },
  Q5_0: { code: 3, blockSize: 32, blockBytes: 22 },
} as const;

export type QuantRowFormat = keyof typeof QUANT_ROW_FORMATS;

export interface QuantRowsAttrs extends NamedAttrMap {
  format: QuantRowFormat;
}

/** int32 words of one weight row of `cols` values in `format`, its blocks padded to whole words. */
export function quantRowWords(format: QuantRowFormat, cols: number): number {
  const { blockSize, blockBytes } = QUANT_ROW_FORMATS[format];
  return Math.ceil(((cols / blockSize) * blockBytes) / 4);
}

/** Weight rows must hold a multiple of this many values: the native loops read 8 values a step. */
export const ROWS_PRODUCT_ALIGNMENT = 8;

/**
 * x [M, cols] float32 times weight rows [rows, cols]^T -> [M, rows], the products of decoding (few rows
 * against a weight stored [out, in], as Hugging Face files hold it), in a wasm SIMD module of our own
 * (native/rows-product.c) that imports the backend's memory and reads the weights in place, on the
 * backend's threads (weight rows shared out, see native-threads.ts).
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
  // Several input rows: weight rows are widened once into scratch, then multiplied with all of them.
  const at = (t: TensorInfo) => heapOffsetOf(backend, t);
  rowsCall(backend, 'bf16_rows_product', [at(w), at(x), at(out)], M, w.shape[0], cols, M > 1 ? ROWS_A_STEP * cols : 0);
  return out;
}

function f32RowsProduct(args: { inputs: { x: TensorInfo; w: TensorInfo }; backend: BackendWasm }): TensorInfo {
  const { inputs, backend } = args;
  const { x, w } = inputs;
  const [M, cols] = checkedShapes(F32_ROWS_PRODUCT, x, w, 'float32', 1);
  const out = backend.makeOutput([M, w.shape[0]], 'float32');
  const at = (t: TensorInfo) => heapOffsetOf(backend, t);
  rowsCall(backend, 'f32_rows_product', [at(w), at(x), at(out)], M, w.shape[0], cols, 0);
  return out;
}

/**
 * x [M, cols] float32 times quantized weight rows (GGML blocks as GGUF files hold them, each row padded to
 * whole int32 words: int32 [rows, ceil(rowBytes / 4)]) -> [M, rows]. Each weight row is dequantized once,
 * in the module, with ggml's arithmetic, then multiplied with every input row: a streamed GGUF model
 * (Q8_0, or a Q4_K_M mix of Q4_K, Q6_K, Q5_0 and Q8_0) decodes without dequantizing on the host or
 * uploading float32.
 */
function quantRowsProduct(args: { inputs: { x: TensorInfo; w: TensorInfo }; backend: BackendWasm; attrs: QuantRowsAttrs }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x, w } = inputs;
  const [M, cols] = x.shape;
  const { code, blockSize } = QUANT_ROW_FORMATS[attrs.format];
  const fits = x.dtype === 'float32' && w.dtype === 'int32' && x.shape.length === 2 && w.shape.length === 2;
  if (!fits || cols % blockSize !== 0 || cols % ROWS_PRODUCT_ALIGNMENT !== 0 || w.shape[1] !== quantRowWords(attrs.format, cols)) {
    throw new Error(
      `${QUANT_ROWS_PRODUCT}: expected x float32 [M, cols] with cols a multiple of ${blockSize} and ${ROWS_PRODUCT_ALIGNMENT}, and ` +
        `${attrs.format} rows as int32 [rows, ${Number.isInteger(cols / blockSize) ? quantRowWords(attrs.format, cols) : 'whole blocks in words'}], ` +
        `got x ${x.dtype} [${x.shape}] and w ${w.dtype} [${w.shape}]`,
    );
  }
  const out = backend.makeOutput([M, w.shape[0]], 'float32');
  const at = (t: TensorInfo) => heapOffsetOf(backend, t);
  rowsCall(backend, 'quant_rows_product', [code, at(w), w.shape[1] * 4, at(x), at(out)], M, w.shape[0], cols, ROWS_A_STEP * cols);
  return out;
}

/** Weight rows the native loops take at a step (decoded into scratch together where they are not float32). */
const ROWS_A_STEP = 4;

/**
 * One rows product: `leading` are the export's arguments before (m_count, rows, cols); weight rows are the
 * tasks, shared out between the backend's threads in runs of whole steps.
 */
function rowsCall(
  backend: BackendWasm,
  fn: 'bf16_rows_product' | 'f32_rows_product' | 'quant_rows_product',
  leading: number[],
  M: number,
  rows: number,
  cols: number,
  scratchValues: number,
): void {
  runNativeCall(backend, {
    kernel: 'rows-product',
    fn,
    args: [...leading, M, rows, cols],
    tasks: rows,
    scratchBytes: scratchValues * Float32Array.BYTES_PER_ELEMENT,
    work: M * rows * cols,
    chunk: (threads) => Math.ceil(rows / (4 * threads) / ROWS_A_STEP) * ROWS_A_STEP, // about four chunks a thread
  });
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

export const quantRowsProductConfig: KernelConfig = {
  kernelName: QUANT_ROWS_PRODUCT,
  backendName: 'wasm',
  kernelFunc: quantRowsProduct as unknown as KernelFunc,
};
