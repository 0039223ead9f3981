import * as tf from '@tensorflow/tfjs-core';
import { batchMatMulConfig } from './batch-mat-mul.ts';
import { bf16RowsProductConfig, f32RowsProductConfig, quantRowsProductConfig } from './rows-product.ts';
import { castConfig } from './cast.ts';
import { decodeAttentionConfig } from './decode-attention.ts';
import { gatherV2Config } from './gather.ts';
import { identityConfig } from './identity.ts';
import { reverseConfig } from './reverse.ts';
import { rmsNormConfig } from './rms-norm.ts';
import { sliceConfig, splitVConfig, unpackConfig } from './slice.ts';
import { transposeConfig } from './transpose.ts';
import { unsortedSegmentSumConfig } from './unsorted-segment-sum.ts';
import { unguarded } from '../wasm-faults.ts';

/**
 * Kernels a transformer training step needs that tfjs-backend-wasm 4.22 lacks (UnsortedSegmentSum), or
 * has only in a form too slow to train with: Slice, Unpack, SplitV, GatherV2, Transpose, Reverse,
 * batched or transposed BatchMatMul, and Identity and Cast, which copied what they could share.
 * Compared with the cpu backend, wasm also lacks Einsum, FFT, complex numbers, ragged tensors and
 * convolution filter gradients, none of which a Llama-family forward and backward pass uses.
 */
const WASM_TRAINING_KERNELS: tf.KernelConfig[] = [
  unsortedSegmentSumConfig,
  sliceConfig,
  unpackConfig,
  splitVConfig,
  transposeConfig,
  batchMatMulConfig,
  identityConfig,
  castConfig,
  reverseConfig,
  gatherV2Config,
];

/**
 * Kernels of inference alone, with no gradient (src/model/fused-ops.ts): an RMSNorm and a decoding step's
 * attention in one pass each, where the differentiable path dispatches many small ops per token, and
 * products with BF16 or quantized weight rows read as stored (a streamed model's decoding).
 */
const WASM_INFERENCE_KERNELS: tf.KernelConfig[] = [rmsNormConfig, decodeAttentionConfig, bf16RowsProductConfig, f32RowsProductConfig, quantRowsProductConfig];

/**
 * Registers the kernels above for the wasm backend, in place of any kernel registered under the same
 * name; safe to call more than once. A replaced kernel's setup function is kept: other stock kernels
 * call the replaced one's implementation directly (Sum calls Transpose's), which needs its setup.
 */
export function registerWasmKernels(): void {
  for (const config of [...WASM_TRAINING_KERNELS, ...WASM_INFERENCE_KERNELS]) {
    const current = tf.getKernel(config.kernelName, config.backendName);
    if (current !== undefined && unguarded(current.kernelFunc) === config.kernelFunc) continue;
    if (current !== undefined) tf.unregisterKernel(config.kernelName, config.backendName);
    tf.registerKernel({ ...config, setupFunc: config.setupFunc ?? current?.setupFunc });
  }
}
