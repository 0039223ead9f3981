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
}

export function backendCapacity(backend = tf.getBackend()): BackendCapacity {
  if (backend === 'wasm') {
    return { backend, bytes: WASM_USABLE_BYTES, sharesHostMemory: false, source: '32-bit wasm heap: 4 GiB maximum, 3.98 GiB measured usable, 0.5 GiB kept free' };
  }
  return { backend, bytes: Math.max(0, totalmem() - HOST_RESERVE), sharesHostMemory: true, source: `host memory (${(totalmem() / GiB).toFixed(1)} GiB) less 2 GiB` };
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
