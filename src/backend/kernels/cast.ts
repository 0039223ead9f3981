import { Cast, type CastAttrs, type CastInputs, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { shareData } from './identity.ts';

/**
 * Cast for wasm that shares the data when the dtype does not change. The gradients of Mul and other
 * binary ops cast their float32 inputs to float32, and the stock kernel copied each of them (16 copies of
 * [8, 256, 688] per training step of the benchmark model). Other casts copy as the stock kernel does.
 */
function cast(args: { inputs: CastInputs; backend: BackendWasm; attrs: CastAttrs }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as TensorInfo;
  if (x.dtype === attrs.dtype) return shareData(backend, x);
  const out = backend.makeOutput(x.shape, attrs.dtype);
  // Views only after makeOutput: allocating may grow the wasm heap, which detaches older views.
  backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(x));
  return out;
}

export const castConfig: KernelConfig = { kernelName: Cast, backendName: 'wasm', kernelFunc: cast as unknown as KernelFunc };
