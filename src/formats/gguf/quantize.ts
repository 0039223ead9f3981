/**
 * Float32 to the tensor types the writer produces. Q8_0, Q4_0, Q5_0 and Q5_1 follow ggml's reference
 * quantizers (`quantize_row_*_ref` in `src/ggml-quants.c`) bit for bit, the K-quants too (quantize-k.ts);
 * F16 and BF16 round to nearest even through half-float.ts.
 */
import { encodeBf16, encodeF16, float32ToF16Bits } from '../half-float.ts';
import { GGML_BLOCK_LAYOUT } from './constants.ts';
import { quantizeQ4_K, quantizeQ5_K, quantizeQ6_K } from './quantize-k.ts';

/** Fills `out` (blocks × type size bytes) from `values` (blocks × block size). */
export type Quantizer = (values: Float32Array, out: Uint8Array) => void;

export const QUANTIZERS = {
  F32: quantizeF32,
  F16: quantizeF16,
  BF16: quantizeBf16,
  Q8_0: quantizeQ8_0,
  Q4_0: quantizeQ4_0,
  Q5_0: quantizeQ5_0,
  Q5_1: quantizeQ5_1,
  Q4_K: quantizeQ4_K,
  Q5_K: quantizeQ5_K,
  Q6_K: quantizeQ6_K,
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
    const d = Math.fround(largestMagnitude(values, x) / -8);
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

/**
 * Per block of 32: d = m / -16 for the value m of largest magnitude, q = min(31, trunc(x / d + 16.5)), the low
 * four bits in qs (values j and j + 16 share a byte) and the fifth in the 32-bit qh.
 */
export function quantizeQ5_0(values: Float32Array, out: Uint8Array): void {
  for (let b = 0; b < values.length / 32; b++) {
    const x = b * 32;
    const d = Math.fround(largestMagnitude(values, x) / -16);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    writeQ5Block(out, b * 22, [d], (v) => Math.min(31, Math.trunc(Math.fround(Math.fround(v * id) + 16.5))), values.subarray(x, x + 32));
  }
}

/** Per block of 32: d = (max - min) / 31, m = min, q = trunc((x - min) / d + 0.5); d and m stored as f16. */
export function quantizeQ5_1(values: Float32Array, out: Uint8Array): void {
  for (let b = 0; b < values.length / 32; b++) {
    const block = values.subarray(b * 32, b * 32 + 32);
    let min = Infinity;
    let max = -Infinity;
    for (const v of block) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = Math.fround(Math.fround(max - min) / 31);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    writeQ5Block(out, b * 24, [d, min], (v) => Math.trunc(Math.fround(Math.fround(Math.fround(v - min) * id) + 0.5)) & 0xff, block);
  }
}

/** A Q5 block: its f16 header floats, the 32-bit qh of fifth bits, then 16 bytes of low nibbles. */
function writeQ5Block(out: Uint8Array, at: number, header: number[], level: (value: number) => number, block: Float32Array): void {
  header.forEach((value, i) => writeF16(out, at + 2 * i, value));
  const qs = at + 2 * header.length + 4;
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const low = level(block[j]);
    const high = level(block[j + 16]);
    out[qs + j] = (low & 0x0f) | ((high & 0x0f) << 4);
    qh |= ((low & 0x10) >> 4) << j;
    qh |= ((high & 0x10) >> 4) << (j + 16);
  }
  new DataView(out.buffer, out.byteOffset).setUint32(qs - 4, qh >>> 0, true);
}

/** The value of largest magnitude in the block of 32 at `from` (the first of equal ones), sign kept. */
function largestMagnitude(values: Float32Array, from: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const magnitude = Math.abs(values[from + j]);
    if (amax < magnitude) {
      amax = magnitude;
      max = values[from + j];
    }
  }
  return max;
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
