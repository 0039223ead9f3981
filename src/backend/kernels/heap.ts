import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** A tensor's values as a typed array over the wasm heap (`BackendWasm.typedArrayFromHeap`). */
export type HeapValues = Float32Array | Int32Array | Uint8Array;

/**
 * The typed array over all of `view`'s buffer: for a tensor's view, the whole wasm heap. Kernels copy
 * within it with `copyWithin`, which moves a run of values without creating a view per run: about
 * twice as fast as `set(subarray(...))` for runs of 32 values.
 */
export function wholeBuffer(view: HeapValues): HeapValues {
  const Type = view.constructor as new (buffer: ArrayBufferLike) => HeapValues;
  return new Type(view.buffer);
}

/** Position of `view`'s first element in `wholeBuffer(view)`. */
export function offsetOf(view: HeapValues): number {
  return view.byteOffset / view.BYTES_PER_ELEMENT;
}

/** Byte offset in the backend's heap where a tensor's data starts. */
export function heapOffsetOf(backend: BackendWasm, t: { dataId: object }): number {
  return backend.dataIdMap.get(t.dataId)!.memoryOffset;
}
