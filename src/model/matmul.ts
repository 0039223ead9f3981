import * as tf from '@tensorflow/tfjs-core';
import { isRecordingGradients } from '../backend/tape.ts';
import { ROWS_PRODUCT_ALIGNMENT, type QuantRowFormat } from '../backend/kernels/rows-product.ts';
import { bf16RowsProduct, canFuse, f32RowsProduct, quantRowsProduct } from './fused-ops.ts';

/**
 * Products of at most this many activation rows take a streamed model's BF16 or quantized weights as stored
 * (see FrozenWeights): on a [9728, 896] block (Qwen2.5-0.5B's gate|up) the raw BF16 upload and
 * bf16RowsProduct took 6.6 ms at 1 row, 20.7 at 16 and 62.9 at 64, where decoding to float32, uploading and
 * multiplying took 25.8, 40.4 and 76.0 (2 threads, this project's 2-core machine).
 */
export const RAW_ROWS_MAX_ROWS = 64;

/** Whether products of `rows` activation rows may take raw weight rows: few rows, no tape, the kernels present. */
export function takesRawRows(rows: number): boolean {
  return rows <= RAW_ROWS_MAX_ROWS && rawRowsKernels();
}

/** Whether the backend has the kernels that multiply raw weight rows (wasm's). */
export function rawRowsKernels(): boolean {
  return canFuse('bf16Rows') && canFuse('quantRows');
}

/** The stored types in which weight rows may enter the backend as they are (int32 words), for a rows product. */
export type RawRowType = 'BF16' | QuantRowFormat;

const rawRowTypes = new WeakMap<tf.Tensor, RawRowType>();

/** Marks int32 words `rows` as weight rows stored as `type`, which linearOfRows then multiplies as such. */
export function markRawRows(rows: tf.Tensor2D, type: RawRowType): tf.Tensor2D {
  rawRowTypes.set(rows, type);
  return rows;
}

/**
 * Products of at most this many rows with float32 weight rows (a streamed model's pinned blocks, a resident
 * head's chunks) run in f32RowsProduct. Through the BatchMatMul kernel, a [9728, 896] block not among its
 * kept copies took 31.8 ms at 1 row, 29.9 at 16 and 24.8 at 32, and f32RowsProduct 3.3, 13.5 and 24.5 (2
 * threads, this project's 2-core machine); beyond that XNNPACK's two threads win.
 */
const F32_ROWS_MAX_ROWS = 16;

/**
 * x @ w for activations of any rank [..., in] and a weight stored [in, out].
 *
 * Plain `tf.matMul` throughout the model, batched and transposed products included (attention, the
 * gradients autodiff builds): on wasm they run through the BatchMatMul kernel registered by
 * src/backend/kernels, which turns them into the backend's fast 2-D products.
 * Under a gradient tape x goes in as one 2-D matrix, so the weight's gradient is one product rather than
 * a batch of them summed; without one, the weight is broadcast over x's leading axes, which is the same
 * single product without the two reshapes (decoding runs seven projections a layer per token).
 */
export function linear(x: tf.Tensor, w: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  const y = product(x, w, false);
  return bias ? tf.add(y, bias) : y;
}

/**
 * x @ w^T for a weight stored [out, in], as Hugging Face files hold it (a streamed layer's uploads): float32,
 * or raw rows (int32 words marked by markRawRows, see takesRawRows) outside a tape.
 */
export function linearOfRows(x: tf.Tensor, w: tf.Tensor2D): tf.Tensor {
  const inDim = x.shape[x.rank - 1];
  const rows = x.size / inDim;
  const native =
    w.dtype === 'int32'
      ? rawRowsProduct(w)
      : rows <= F32_ROWS_MAX_ROWS && inDim % ROWS_PRODUCT_ALIGNMENT === 0 && canFuse('f32Rows')
        ? f32RowsProduct
        : null;
  if (native === null) return product(x, w, true);
  const y = native(tf.reshape(x, [rows, inDim]) as tf.Tensor2D, w);
  return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), w.shape[0]]);
}

function rawRowsProduct(w: tf.Tensor2D): (x: tf.Tensor2D, rows: tf.Tensor2D) => tf.Tensor2D {
  const type = rawRowTypes.get(w);
  if (type === undefined) throw new Error(`linearOfRows: int32 weight rows [${w.shape}] of no stored type (see markRawRows)`);
  return type === 'BF16' ? bf16RowsProduct : (x, rows) => quantRowsProduct(x, rows, type);
}

function product(x: tf.Tensor, w: tf.Tensor2D, transposed: boolean): tf.Tensor {
  if (x.rank === 2 || !isRecordingGradients()) return tf.matMul(x as tf.Tensor3D, w, false, transposed);
  const inDim = x.shape[x.rank - 1];
  const y = tf.matMul(tf.reshape(x, [x.size / inDim, inDim]) as tf.Tensor2D, w, false, transposed); // [rows, out]
  return tf.reshape(y, [...x.shape.slice(0, -1), w.shape[transposed ? 0 : 1]]);
}
