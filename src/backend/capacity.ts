/**
 * How many bytes of tensors the live backend can hold, and how many it holds now.
 *
 * wasm: tfjs-backend-wasm's memory is a 32-bit WebAssembly.Memory whose maximum is 4 GiB. Measured on this
 * project's machines (tfjs 4.22.0, 2 threads): tensors of 128 MiB allocate and compute correctly up to
 * 3.98 GiB of heap, and the next allocation aborts the module. The budget leaves 0.5 GiB of that for
 * the allocator's fragmentation, the kernels' scratch space and the module's own data.
 * Other backends keep tensors in host memory (cpu, tensorflow) and get most of it.
 */
import { totalmem } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { probedWebgpuAdapter, type WebgpuAdapter } from './webgpu.ts';

const GiB = 2 ** 30;
export const WASM_HEAP_MAXIMUM = 4 * GiB;
export const WASM_USABLE_BYTES = 3.5 * GiB;
/** Host memory left to the operating system and Node itself on backends that share it. */
const HOST_RESERVE = 2 * GiB;

export interface BackendCapacity {
  backend: string;
  /** Bytes of tensors the backend can hold at once. */
  bytes: number;
  /** Whether the backend's tensors live in host memory alongside everything else. */
  sharesHostMemory: boolean;
  /** Where the number comes from, for the plan's table. */
  source: string;
  /** The largest single tensor the backend can compute with (webgpu: the adapter's largest storage binding). */
  maxTensorBytes?: number;
}

/** WebGPU does not report a GPU's memory: what the plan assumes unless SLM_TRAIN_GPU_MEMORY_GIB says. */
const ASSUMED_GPU_GIB = 8;

export function backendCapacity(backend = tf.getBackend()): BackendCapacity {
  if (backend === 'webgpu') return webgpuCapacity(probedWebgpuAdapter());
  if (backend === 'wasm') {
    return { backend, bytes: WASM_USABLE_BYTES, sharesHostMemory: false, source: '32-bit wasm heap: 4 GiB maximum, 3.98 GiB measured usable, 0.5 GiB kept free' };
  }
  return { backend, bytes: Math.max(0, totalmem() - HOST_RESERVE), sharesHostMemory: true, source: `host memory (${(totalmem() / GiB).toFixed(1)} GiB) less 2 GiB` };
}

/**
 * A software adapter computes in host memory; a GPU's own memory is not reported by WebGPU, so the plan
 * takes SLM_TRAIN_GPU_MEMORY_GIB or assumes 8 GiB. Either way no tensor may exceed the largest storage
 * binding, which residency `auto` respects by streaming a base whose matrices would.
 */
export function webgpuCapacity(adapter: WebgpuAdapter | null, env: NodeJS.ProcessEnv = process.env): BackendCapacity {
  const maxTensorBytes = adapter?.limits.maxStorageBufferBindingSize;
  if (adapter?.type === 'software') {
    return { backend: 'webgpu', bytes: hostCapacity(), sharesHostMemory: true, source: `software adapter in host memory (${(totalmem() / GiB).toFixed(1)} GiB) less 2 GiB`, maxTensorBytes };
  }
  const stated = Number(env.SLM_TRAIN_GPU_MEMORY_GIB);
  const gib = Number.isFinite(stated) && stated > 0 ? stated : ASSUMED_GPU_GIB;
  const source = gib === stated ? `SLM_TRAIN_GPU_MEMORY_GIB=${stated}` : `WebGPU does not report GPU memory: ${ASSUMED_GPU_GIB} GiB assumed (set SLM_TRAIN_GPU_MEMORY_GIB)`;
  return { backend: 'webgpu', bytes: gib * GiB, sharesHostMemory: false, source, maxTensorBytes };
}

/** Host memory this machine has, less what the system and Node need. */
export function hostCapacity(): number {
  return Math.max(0, totalmem() - HOST_RESERVE);
}

/** Bytes of tensors the backend holds now, and for wasm the heap's current size. */
export function backendMemoryInUse(): { tensorBytes: number; heapBytes: number | null } {
  if (tf.engine().backendName === null) return { tensorBytes: 0, heapBytes: null };
  const tensorBytes = tf.memory().numBytes;
  const wasm = tf.getBackend() === 'wasm' ? (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm : undefined;
  return { tensorBytes, heapBytes: wasm?.HEAPU8?.buffer.byteLength ?? null };
}
