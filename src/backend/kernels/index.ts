import * as tf from '@tensorflow/tfjs-core';
import { sliceConfig, unpackConfig } from './slice.ts';
import { unsortedSegmentSumConfig } from './unsorted-segment-sum.ts';

/**
 * Kernels a transformer training step needs that tfjs-backend-wasm 4.22 lacks (UnsortedSegmentSum), or
 * has only in a form too slow to train with (Slice, Unpack). Compared with the cpu backend, wasm also
 * lacks Einsum, FFT, complex numbers, ragged tensors and convolution filter gradients, none of which a
 * Llama-family forward and backward pass uses.
 */
const WASM_TRAINING_KERNELS: tf.KernelConfig[] = [unsortedSegmentSumConfig, sliceConfig, unpackConfig];

/**
 * Registers the kernels above for the wasm backend, in place of any kernel registered under the same
 * name; safe to call more than once.
 */
export function registerWasmTrainingKernels(): void {
  for (const config of WASM_TRAINING_KERNELS) {
    const current = tf.getKernel(config.kernelName, config.backendName);
    if (current === config) continue;
    if (current !== undefined) tf.unregisterKernel(config.kernelName, config.backendName);
    tf.registerKernel(config);
  }
}
