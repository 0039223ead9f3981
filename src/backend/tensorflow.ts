import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { describeLoadFailure, loadOptionalPackage, type PackageLoader } from './optional-package.ts';
import type { BackendOutcome } from './types.ts';

export type TensorflowBackendName = 'tensorflow-gpu' | 'tensorflow';

const PACKAGE: Record<TensorflowBackendName, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

const INSTALL_HINT: Record<TensorflowBackendName, string> = {
  'tensorflow-gpu':
    'npm install @tensorflow/tfjs-node-gpu; its install downloads libtensorflow with CUDA, and it runs ' +
    'with CUDA 11.2 and cuDNN 8.1 libraries on LD_LIBRARY_PATH',
  tensorflow: 'npm install @tensorflow/tfjs-node; its install downloads libtensorflow',
};

/** Both packages register the same tfjs backend name. */
const TFJS_NAME = 'tensorflow';

/** The fields tfjs-node's NodeJSKernelBackend sets from its native binding. */
interface NodeKernelBackend {
  isGPUPackage?: boolean;
  isUsingGpuDevice?: boolean;
}

/**
 * Loads tfjs-node-gpu or tfjs-node and makes its 'tensorflow' backend current. tensorflow-gpu only
 * counts when TensorFlow actually found a GPU: without one, tfjs-node-gpu silently runs its CPU kernels.
 */
export async function tryTensorflow(
  kind: TensorflowBackendName,
  load: PackageLoader = loadOptionalPackage,
): Promise<BackendOutcome> {
  if (kind === 'tensorflow' && tf.findBackendFactory(TFJS_NAME) !== null) return useLoadedTensorflow(kind);
  const packageName = PACKAGE[kind];
  const loaded = await load(packageName);
  if (loaded.status === 'not-installed') {
    return { ok: false, reason: `${packageName} is not installed (${INSTALL_HINT[kind]})` };
  }
  if (loaded.status === 'load-failed') {
    return { ok: false, reason: `${packageName} is installed but ${describeLoadFailure(packageName, loaded.message)}` };
  }
  if (tf.findBackendFactory(TFJS_NAME) === null) {
    return {
      ok: false,
      reason:
        `${packageName} loaded but registered no '${TFJS_NAME}' backend with this process's tfjs engine ` +
        `(its @tensorflow/tfjs-core must be version ${tf.version_core})`,
    };
  }
  return useLoadedTensorflow(kind);
}

async function useLoadedTensorflow(kind: TensorflowBackendName): Promise<BackendOutcome> {
  if (!(await tf.setBackend(TFJS_NAME))) {
    return { ok: false, reason: `tf.setBackend('${TFJS_NAME}') failed; tfjs logged the cause above` };
  }
  const backend = tf.engine().registry[TFJS_NAME] as NodeKernelBackend;
  const problem = gpuProblem(kind, backend);
  if (problem !== null) return { ok: false, reason: problem };
  const source = backend.isGPUPackage ? PACKAGE['tensorflow-gpu'] : PACKAGE.tensorflow;
  const what = kind === 'tensorflow-gpu' ? 'TensorFlow on the GPU' : 'TensorFlow CPU kernels';
  return { ok: true, reason: `loaded: ${what} from ${source}`, threads: availableParallelism() };
}

/** Why a loaded 'tensorflow' backend does not count as tensorflow-gpu, or null when it does. */
export function gpuProblem(kind: TensorflowBackendName, backend: NodeKernelBackend): string | null {
  if (kind !== 'tensorflow-gpu') return null;
  if (backend.isGPUPackage === false) {
    return `the '${TFJS_NAME}' backend of this process came from ${PACKAGE.tensorflow}, loaded earlier, which has no GPU support`;
  }
  if (backend.isUsingGpuDevice !== true) {
    return (
      `${PACKAGE['tensorflow-gpu']} loaded, but TensorFlow found no usable GPU (no NVIDIA driver, or a CUDA/cuDNN ` +
      `library it could not open: TensorFlow's log above names it); it would run on its CPU kernels`
    );
  }
  return null;
}
