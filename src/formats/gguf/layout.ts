/**
 * Pure arithmetic of the file layout, shared by the reader and the writer.
 */
import { GGML_BLOCK_LAYOUT } from './constants.ts';
import type { GgmlTypeName } from './constants.ts';

/** The first multiple of `alignment` at or after `offset` (the spec's align_offset; also GGML_PAD). */
export function alignOffset(offset: number, alignment: number): number {
  return offset + ((alignment - (offset % alignment)) % alignment);
}

/** Bytes of `elementCount` values of `type`; the count must be a whole number of blocks. */
export function tensorByteLength(type: GgmlTypeName, elementCount: number): number {
  const { blockSize, typeSize } = GGML_BLOCK_LAYOUT[type];
  return (elementCount / blockSize) * typeSize;
}

/** GGUF lists dimensions fastest-varying first; PyTorch shapes list them slowest first. */
export function shapeFromDims(dims: readonly number[]): number[] {
  return [...dims].reverse();
}

export function dimsFromShape(shape: readonly number[]): number[] {
  return [...shape].reverse();
}
