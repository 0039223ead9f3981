/**
 * ggml's own reference quantizers (`quantize_row_*_ref` of src/ggml-quants.c), called in the libggml-base
 * that node-llama-cpp ships prebuilt, through koffi: the bytes our quantizers must reproduce.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import koffi from 'koffi';

export type ReferenceQuantizer = (values: Float32Array, out: Uint8Array) => void;

/** libggml-base of this platform's node-llama-cpp binaries, or null when it has none. */
function libggmlPath(): string | null {
  const platform = `${process.platform}-${process.arch}`;
  try {
    const root = dirname(dirname(createRequire(import.meta.url).resolve(`@node-llama-cpp/${platform}`))); // <root>/dist/index.js
    const path = join(root, 'bins', platform, 'libggml-base.so');
    return existsSync(path) ? path : null;
  } catch {
    return null;
  }
}

const path = libggmlPath();
const library = path ? koffi.load(path) : null;

export const LIBGGML_AVAILABLE = library !== null;

/** ggml's quantize_row_<type>_ref for `type` (q4_K, q5_K, q6_K, q5_0, q5_1, q8_0, q4_0). */
export function referenceQuantizer(type: string): ReferenceQuantizer {
  if (!library) throw new Error('libggml-base is not available on this platform');
  const quantize = library.func(`void quantize_row_${type}_ref(const float *x, _Out_ uint8_t *y, int64_t k)`);
  return (values, out) => quantize(values, out, values.length);
}

/** ggml's dequantize_row_<type>: blocks of `type` back to float32. */
export function referenceDequantizer(type: string): (bytes: Uint8Array, out: Float32Array) => void {
  if (!library) throw new Error('libggml-base is not available on this platform');
  const dequantize = library.func(`void dequantize_row_${type}(const uint8_t *x, _Out_ float *y, int64_t k)`);
  return (bytes, out) => dequantize(bytes, out, out.length);
}
