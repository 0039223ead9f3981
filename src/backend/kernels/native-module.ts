import { readFileSync } from 'node:fs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * The kernels of our own in native/, each built by native/build.sh from native/<name>.c, and their
 * exports that threads share (each takes (...args, scratch, first, last) and runs tasks [first, last)).
 */
export const NATIVE_EXPORTS = {
  'rows-product': ['bf16_rows_product', 'f32_rows_product', 'quant_rows_product'],
  'batch-product': ['batch_product'],
} as const;

export type NativeKernelName = keyof typeof NATIVE_EXPORTS;

export interface NativeModule<Exports> {
  exports: Exports;
  /** The compiled module and the memory it imports, for helper threads that instantiate it again. */
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** Whether the memory is shared: the backend is tfjs-backend-wasm's threaded build. */
  shared: boolean;
}

const loaded = new WeakMap<object, Map<NativeKernelName, NativeModule<unknown>>>();

/**
 * A native module instantiated on the wasm backend's memory, once per backend: the shared-memory build
 * for the threaded backend, else the plain one. The modules read and write tensors where they lie.
 */
export function nativeModule<Exports>(backend: BackendWasm, name: NativeKernelName): NativeModule<Exports> {
  let modules = loaded.get(backend.wasm);
  if (modules === undefined) loaded.set(backend.wasm, (modules = new Map()));
  let native = modules.get(name);
  if (native === undefined) {
    const memory = backendMemory(backend, name);
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const file = new URL(`./native/${name}${shared ? '-shared' : ''}.wasm`, import.meta.url);
    const module = new WebAssembly.Module(readFileSync(file));
    native = { exports: new WebAssembly.Instance(module, { env: { memory } }).exports, module, memory, shared };
    modules.set(name, native);
  }
  return native as NativeModule<Exports>;
}

function backendMemory(backend: BackendWasm, name: NativeKernelName): WebAssembly.Memory {
  const module = backend.wasm as unknown as { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory } };
  const memory = module.wasmMemory ?? module.asm?.memory;
  if (memory === undefined) throw new Error(`native ${name} kernel: the wasm backend does not expose its memory`);
  return memory;
}
