/**
 * A wasm backend that runs out of its 32-bit heap does not throw a JavaScript error a user can act on.
 * Worse than an abort (`Aborted()`) or a trap (`memory access out of bounds`, or a pthread worker's report
 * with the minified source line): tfjs-backend-wasm 4.22 takes the 0 that a failed `_malloc` returns as
 * the tensor's address, so the next tensor silently overwrites the first bytes of the heap (measured: a
 * 256 MiB fill at 3.84 GiB of heap landed at address 0 and changed another tensor's values).
 * So allocations that fail throw, and every wasm kernel is wrapped so that any such failure becomes one
 * BackendMemoryError naming the kernel, its input shapes and the heap in use; the CLI turns one that
 * escapes from a worker into the same line.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatSize } from '../util/format-size.ts';
import { SlmError } from '../util/errors.ts';
import { backendMemoryInUse, WASM_HEAP_MAXIMUM } from './capacity.ts';

const FAULT_PATTERN = /memory access out of bounds|Aborted\(|out of memory|Invalid typed array length|Array buffer allocation failed|unreachable|worker sent an error/i;

export class BackendMemoryError extends SlmError {
  constructor(message: string, cause: unknown) {
    super(message, { code: 'ERR_BACKEND_MEMORY', cause });
  }
}

/** Whether an error is the wasm module failing for want of memory (or dying of it). */
export function isWasmFault(error: unknown): boolean {
  return !(error instanceof SlmError) && FAULT_PATTERN.test(error instanceof Error ? error.message : String(error));
}

/** The one-line error for a wasm fault during `operation`. */
export function wasmFaultError(operation: string, cause: unknown): BackendMemoryError {
  const { tensorBytes, heapBytes } = backendMemoryInUse();
  const heap = heapBytes === null ? '' : ` with ${formatSize(heapBytes)} of its ${formatSize(WASM_HEAP_MAXIMUM)} heap grown`;
  const firstLine = (cause instanceof Error ? cause.message : String(cause)).split('\n')[0].slice(0, 120);
  return new BackendMemoryError(
    `the wasm backend failed in ${operation}${heap} (${formatSize(tensorBytes)} in tensors): ${firstLine}; ` +
      'it ran out of its 32-bit heap: see `slm-train plan RECIPE`, lower data.seq_len or train.batch_size, or use --backend tensorflow',
    cause,
  );
}

/** Each wrapper's kernel function. */
const originals = new WeakMap<tf.KernelFunc, tf.KernelFunc>();

/** The kernel function a wrapper runs; any other function as it is. */
export function unguarded(kernelFunc: tf.KernelFunc): tf.KernelFunc {
  return originals.get(kernelFunc) ?? kernelFunc;
}

/** Wraps every kernel registered for wasm that is not wrapped yet; call after registering kernels. */
export function guardWasmKernels(): void {
  for (const config of tf.getKernelsForBackend('wasm')) {
    const kernelFunc = config.kernelFunc;
    if (originals.has(kernelFunc)) continue;
    const guarded: tf.KernelFunc = (args) => {
      try {
        return kernelFunc(args);
      } catch (error) {
        if (!isWasmFault(error)) throw error;
        throw wasmFaultError(`${config.kernelName} on ${describeInputs(args.inputs)}`, error);
      }
    };
    originals.set(guarded, kernelFunc);
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel({ ...config, kernelFunc: guarded });
  }
}

interface WasmModule {
  _malloc(bytes: number): number;
  _free(pointer: number): void;
}

const guardedModules = new WeakSet<WasmModule>();

/** Makes the live wasm backend's allocations throw instead of returning address 0 when the heap is full. */
export function guardWasmAllocations(backend: unknown): void {
  const wasm = (backend as { wasm?: WasmModule }).wasm;
  if (!wasm || guardedModules.has(wasm)) return;
  guardedModules.add(wasm);
  // Emscripten binds its exports lazily: the first call replaces Module._malloc, and a wrapper with it.
  wasm._free(wasm._malloc(8));
  const malloc = wasm._malloc;
  wasm._malloc = (bytes: number) => {
    const address = malloc.call(wasm, bytes);
    if (address === 0 && bytes > 0) throw new Error(`out of memory: the wasm heap has no room for ${formatSize(bytes)}`);
    return address;
  };
}

function describeInputs(inputs: tf.NamedTensorInfoMap): string {
  const shapes = Object.values(inputs).map((t) => (t ? `[${t.shape.join('x')}]` : '-'));
  return shapes.length ? shapes.join(', ') : 'no inputs';
}
