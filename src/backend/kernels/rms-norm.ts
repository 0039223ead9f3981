import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** The kernel name of `fusedRmsNorm` (src/model/fused-ops.ts), registered for wasm only. */
export const RMS_NORM = 'SlmRmsNorm';

interface RmsNormAttrs extends NamedAttrMap {
  eps: number;
}

/**
 * x / sqrt(mean(x^2) + eps) * weight over the last axis, in one pass per row: the six tfjs ops of the
 * differentiable norm (multiply, mean, add, rsqrt, multiply, multiply) cost decoding more in dispatch than
 * in arithmetic. Inference only: it has no gradient. Sums run in double precision.
 */
function rmsNorm(args: { inputs: { x: TensorInfo; weight: TensorInfo }; backend: BackendWasm; attrs: RmsNormAttrs }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x, weight } = inputs;
  if (x.dtype !== 'float32' || weight.dtype !== 'float32') throw new Error(`${RMS_NORM}: inputs must be float32, got ${x.dtype} and ${weight.dtype}`);
  const D = x.shape[x.shape.length - 1];
  if (weight.shape.length !== 1 || weight.shape[0] !== D) throw new Error(`${RMS_NORM}: weight [${weight.shape}] does not match x [${x.shape}]`);
  const out = backend.makeOutput(x.shape, 'float32');
  // Views after the output's allocation, which may grow (and so detach) the heap.
  const [values, w, normed] = [x, weight, out].map((t) => backend.typedArrayFromHeap(t) as Float32Array);
  for (let start = 0; start < values.length; start += D) {
    let squares = 0;
    for (let i = start; i < start + D; i++) squares += values[i] * values[i];
    const inverseRms = 1 / Math.sqrt(squares / D + attrs.eps);
    for (let i = 0; i < D; i++) normed[start + i] = values[start + i] * inverseRms * w[i];
  }
  return out;
}

export const rmsNormConfig: KernelConfig = {
  kernelName: RMS_NORM,
  backendName: 'wasm',
  kernelFunc: rmsNorm as unknown as KernelFunc,
};
