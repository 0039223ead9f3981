/**
 * Float32 to the tensor types the writer produces. Q8_0 and Q4_0 follow ggml's reference quantizers
 * (`quantize_row_q8_0_ref`, `quantize_row_q4_0_ref` in `src/ggml-quants.c`) bit for bit; F16 and BF16 round
 * to nearest even through half-float.ts.
 */
import { encodeBf16, encodeF16, float32ToF16Bits } from '../half-float.ts';
import { GGML_BLOCK_LAYOUT } from './constants.ts';

/** Fills `out` (blocks × type size bytes) from `values` (blocks × block size). */
export type Quantizer = (values: Float32Array, out: Uint8Array) => void;

export const QUANTIZERS = {
  F32: quantizeF32,
  F16: quantizeF16,
  BF16: quantizeBf16,
  Q8_0: quantizeQ8_0,
  Q4_0: quantizeQ4_0,
} as const satisfies Record<string, Quantizer>;

export type QuantizableType = keyof typeof QUANTIZERS;

/** New bytes holding `values` as `type`; the length must be a whole number of blocks. */
export function quantize(type: QuantizableType, values: Float32Array): Uint8Array {
  const { blockSize, typeSize } = GGML_BLOCK_LAYOUT[type];
  if (values.length % blockSize !== 0) {
    throw new RangeError(`${values.length} values are not a whole number of ${type} blocks of ${blockSize}`);
  }
  const out = new Uint8Array((values.length / blockSize) * typeSize);
  QUANTIZERS[type](values, out);
  return out;
}

export function quantizeF32(values: Float32Array, out: Uint8Array): void {
  out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

export function quantizeF16(values: Float32Array, out: Uint8Array): void {
  encodeF16(values, new Uint16Array(out.buffer, out.byteOffset, values.length));
}

export function quantizeBf16(values: Float32Array, out: Uint8Array): void {
  encodeBf16(values, new Uint16Array(out.buffer, out.byteOffset, values.length));
}

/**
 * Per block of 32: d = max|x| / 127 and q = round(x / d) (half away from zero), all in float32 arithmetic
 * as ggml does it; d is stored as f16 after the quants were computed with the unrounded d.
 */
export function quantizeQ8_0(values: Float32Array, out: Uint8Array): void {
  const blocks = values.length / 32;
  for (let b = 0; b < blocks; b++) {
    const x = b * 32;
    let amax = 0;
    // ggml's MAX(a, b) macro, NaN handling included
    for (let j = 0; j < 32; j++) {
      const magnitude = Math.abs(values[x + j]);
      amax = amax > magnitude ? amax : magnitude;
    }
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const at = b * 34;
    writeF16(out, at, d);
    for (let j = 0; j < 32; j++) out[at + 2 + j] = roundHalfAwayFromZero(Math.fround(values[x + j] * id)) & 0xff;
  }
}

/**
 * Per block of 32: d = -m / 8 where m is the value of largest magnitude, q = min(15, trunc(x / d + 8.5)).
 * As in gguf-py's quants.py, x * (1/d) + 8.5 is rounded once, matching ggml builds that fuse it into an FMA.
 */
export function quantizeQ4_0(values: Float32Array, out: Uint8Array): void {
  const blocks = values.length / 32;
  for (let b = 0; b < blocks; b++) {
    const x = b * 32;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const magnitude = Math.abs(values[x + j]);
      if (amax < magnitude) {
        amax = magnitude;
        max = values[x + j];
      }
    }
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const at = b * 18;
    writeF16(out, at, d);
    for (let j = 0; j < 16; j++) {
      const low = Math.min(15, Math.trunc(Math.fround(values[x + j] * id + 8.5)));
      const high = Math.min(15, Math.trunc(Math.fround(values[x + j + 16] * id + 8.5)));
      out[at + 2 + j] = low | (high << 4);
    }
  }
}

/** C's roundf. */
function roundHalfAwayFromZero(value: number): number {
  return Math.sign(value) * Math.floor(Math.abs(value) + 0.5);
}

function writeF16(out: Uint8Array, at: number, value: number): void {
  const bits = float32ToF16Bits(value);
  out[at] = bits & 0xff;
  out[at + 1] = bits >> 8;
}
