import { Identity, type IdentityInputs, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** A second reference to x's data: tfjs never writes into a tensor's data once made. */
export function shareData(backend: BackendWasm, x: TensorInfo): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * Identity for wasm that shares the input's data, as the cpu backend's does, instead of copying it.
 * The tape clones every tensor it saves for the backward pass through this kernel: with copies, a
 * training step of the benchmark model made about 2,000 copies and held every saved activation twice.
 */
function identity(args: { inputs: IdentityInputs; backend: BackendWasm }): TensorInfo {
  return shareData(args.backend, args.inputs.x as TensorInfo);
}

export const identityConfig: KernelConfig = {
  kernelName: Identity,
  backendName: 'wasm',
  kernelFunc: identity as unknown as KernelFunc,
};
