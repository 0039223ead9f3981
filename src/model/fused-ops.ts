import * as tf from '@tensorflow/tfjs-core';
import { BF16_ROWS_PRODUCT, F32_ROWS_PRODUCT, QUANT_ROWS_PRODUCT, type QuantRowFormat } from '../backend/kernels/rows-product.ts';
import { DECODE_ATTENTION, type DecodeAttentionAttrs } from '../backend/kernels/decode-attention.ts';
import { RMS_NORM } from '../backend/kernels/rms-norm.ts';
import { isRecordingGradients } from '../backend/tape.ts';
import type { DecodeSlot } from './kv-cache.ts';

/**
 * Inference-only ops that run as one kernel where the backend has one (wasm: src/backend/kernels), in
 * place of the differentiable ops the model otherwise dispatches. Callers fall back to those ops while a
 * gradient is recorded or on backends without the kernel.
 */
export function canFuse(op: keyof typeof KERNELS): boolean {
  return !isRecordingGradients() && tf.getKernel(KERNELS[op], tf.getBackend()) !== undefined;
}

const KERNELS = {
  rmsNorm: RMS_NORM,
  decodeAttention: DECODE_ATTENTION,
  bf16Rows: BF16_ROWS_PRODUCT,
  f32Rows: F32_ROWS_PRODUCT,
  quantRows: QUANT_ROWS_PRODUCT,
} as const;

/** x [M, cols] times BF16 weight rows [rows, cols]^T held raw as int32 [rows, cols / 2] -> [M, rows]. */
export function bf16RowsProduct(x: tf.Tensor2D, rows: tf.Tensor2D): tf.Tensor2D {
  return tf.engine().runKernel(BF16_ROWS_PRODUCT, { x, w: rows }) as tf.Tensor2D;
}

/** x [M, cols] times weight rows [rows, cols]^T stored as GGML blocks of `format`, held raw as int32 words -> [M, rows]. */
export function quantRowsProduct(x: tf.Tensor2D, rows: tf.Tensor2D, format: QuantRowFormat): tf.Tensor2D {
  return tf.engine().runKernel(QUANT_ROWS_PRODUCT, { x, w: rows }, { format }) as tf.Tensor2D;
}

/** x [M, cols] times float32 weight rows [rows, cols]^T -> [M, rows]. */
export function f32RowsProduct(x: tf.Tensor2D, rows: tf.Tensor2D): tf.Tensor2D {
  return tf.engine().runKernel(F32_ROWS_PRODUCT, { x, w: rows }) as tf.Tensor2D;
}

/** x / sqrt(mean(x^2) + eps) * weight over the last axis. */
export function fusedRmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  return tf.engine().runKernel(RMS_NORM, { x, weight }, { eps }) as tf.Tensor;
}

/**
 * One decoding step's attention: qkv [B, (H + 2 KVH) * hd] and rotary tables [1 or B, same] give the
 * context [B, H * hd]; the new key and value are written into the cache slot.
 */
export function fusedDecodeAttention(
  qkv: tf.Tensor2D,
  rope: { cos: tf.Tensor; sin: tf.Tensor },
  slot: DecodeSlot,
  attrs: Omit<DecodeAttentionAttrs, 'at'>,
): tf.Tensor2D {
  const inputs = { qkv, cos: rope.cos, sin: rope.sin, keys: slot.keys, values: slot.values };
  return tf.engine().runKernel(DECODE_ATTENTION, inputs, { ...attrs, at: slot.at }) as tf.Tensor2D;
}
