/**
 * GGML blocks to float32, after `dequantize_row_*` in ggml `src/ggml-quants.c`, with the block layouts of
 * `src/ggml-common.h` (offsets in bytes from the start of a block):
 *
 *   Q8_0 (34):  d f16 @0, qs int8[32] @2                          x = d * q
 *   Q4_0 (18):  d f16 @0, qs u8[16] @2 (low nibble: values 0..15, high nibble: 16..31)   x = d * (q - 8)
 *   Q5_0 (22):  d f16 @0, qh u32 @2 (bit j: fifth bit of value j), qs u8[16] @6   x = d * (q - 16)
 *   Q5_1 (24):  d f16 @0, m f16 @2, qh u32 @4, qs u8[16] @8                       x = d * q + m
 *   Q4_K (144): d f16 @0, dmin f16 @2, scales u8[12] @4, qs u8[128] @16
 *   Q5_K (176): d f16 @0, dmin f16 @2, scales u8[12] @4, qh u8[32] @16, qs u8[128] @48
 *   Q6_K (210): ql u8[128] @0, qh u8[64] @128, scales int8[16] @192, d f16 @208
 *
 * Every product here (an f16 scale times small integers) is exact in float32, so computing in doubles and
 * rounding once on the store gives the same floats as ggml's float arithmetic.
 */
import { GGML_BLOCK_LAYOUT, QK_K } from './constants.ts';
import type { GgmlTypeName } from './constants.ts';
import { decodeBf16, decodeF16, f16BitsToFloat32 } from '../half-float.ts';

/** Fills `out` (blocks × block size values) from `bytes` (blocks × type size bytes). */
export type Dequantizer = (bytes: Uint8Array, out: Float32Array) => void;

export const DEQUANTIZERS = {
  F32: dequantizeF32,
  F16: dequantizeF16,
  BF16: dequantizeBf16,
  Q8_0: dequantizeQ8_0,
  Q4_0: dequantizeQ4_0,
  Q5_0: dequantizeQ5_0,
  Q5_1: dequantizeQ5_1,
  Q4_K: dequantizeQ4_K,
  Q5_K: dequantizeQ5_K,
  Q6_K: dequantizeQ6_K,
} as const satisfies Partial<Record<GgmlTypeName, Dequantizer>>;

export type DequantizableType = keyof typeof DEQUANTIZERS;

export function isDequantizable(type: GgmlTypeName): type is DequantizableType {
  return Object.hasOwn(DEQUANTIZERS, type);
}

/** A new float32 array with the values of `bytes`, which must hold whole blocks of `type`. */
export function dequantize(type: DequantizableType, bytes: Uint8Array): Float32Array {
  const { blockSize, typeSize } = GGML_BLOCK_LAYOUT[type];
  if (bytes.length % typeSize !== 0) {
    throw new RangeError(`${bytes.length} bytes are not a whole number of ${type} blocks of ${typeSize} bytes`);
  }
  const out = new Float32Array((bytes.length / typeSize) * blockSize);
  DEQUANTIZERS[type](bytes, out);
  return out;
}

export function dequantizeF32(bytes: Uint8Array, out: Float32Array): void {
  const source = aligned(bytes, 4);
  out.set(new Float32Array(source.buffer, source.byteOffset, out.length));
}

export function dequantizeF16(bytes: Uint8Array, out: Float32Array): void {
  const source = aligned(bytes, 2);
  decodeF16(new Uint16Array(source.buffer, source.byteOffset, out.length), out);
}

export function dequantizeBf16(bytes: Uint8Array, out: Float32Array): void {
  const source = aligned(bytes, 2);
  decodeBf16(new Uint16Array(source.buffer, source.byteOffset, out.length), out);
}

export function dequantizeQ8_0(bytes: Uint8Array, out: Float32Array): void {
  const blocks = out.length / 32;
  for (let b = 0; b < blocks; b++) {
    const at = b * 34;
    const d = f16At(bytes, at);
    for (let j = 0; j < 32; j++) out[b * 32 + j] = ((bytes[at + 2 + j] << 24) >> 24) * d;
  }
}

export function dequantizeQ4_0(bytes: Uint8Array, out: Float32Array): void {
  const blocks = out.length / 32;
  for (let b = 0; b < blocks; b++) {
    const at = b * 18;
    const d = f16At(bytes, at);
    for (let j = 0; j < 16; j++) {
      const q = bytes[at + 2 + j];
      out[b * 32 + j] = ((q & 0x0f) - 8) * d;
      out[b * 32 + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

export function dequantizeQ5_0(bytes: Uint8Array, out: Float32Array): void {
  dequantizeQ5(bytes, out, 22, (q, d) => (q - 16) * d);
}

export function dequantizeQ5_1(bytes: Uint8Array, out: Float32Array): void {
  dequantizeQ5(bytes, out, 24, (q, d, at) => q * d + f16At(bytes, at + 2));
}

/** Q5_0 and Q5_1: 5-bit levels, low nibbles in qs (values j and j + 16 share a byte), fifth bits in the u32 before them. */
function dequantizeQ5(bytes: Uint8Array, out: Float32Array, typeSize: number, value: (q: number, d: number, at: number) => number): void {
  const blocks = out.length / 32;
  for (let b = 0; b < blocks; b++) {
    const at = b * typeSize;
    const d = f16At(bytes, at);
    const qhAt = at + typeSize - 20;
    const qh = (bytes[qhAt] | (bytes[qhAt + 1] << 8) | (bytes[qhAt + 2] << 16) | (bytes[qhAt + 3] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = bytes[qhAt + 4 + j];
      out[b * 32 + j] = value((q & 0x0f) | (((qh >>> j) & 1) << 4), d, at);
      out[b * 32 + j + 16] = value((q >> 4) | (((qh >>> (j + 16)) & 1) << 4), d, at);
    }
  }
}

export function dequantizeQ4_K(bytes: Uint8Array, out: Float32Array): void {
  const blocks = out.length / QK_K;
  for (let b = 0; b < blocks; b++) {
    const at = b * 144;
    const d = f16At(bytes, at);
    const dmin = f16At(bytes, at + 2);
    const scales = at + 4;
    // each 32-byte run of qs holds two sub-blocks of 32: low nibbles first, then high nibbles
    for (let pair = 0; pair < 4; pair++) {
      const d1 = d * scaleK4(bytes, scales, 2 * pair);
      const m1 = dmin * minK4(bytes, scales, 2 * pair);
      const d2 = d * scaleK4(bytes, scales, 2 * pair + 1);
      const m2 = dmin * minK4(bytes, scales, 2 * pair + 1);
      const qs = at + 16 + 32 * pair;
      const y = b * QK_K + 64 * pair;
      for (let l = 0; l < 32; l++) {
        out[y + l] = d1 * (bytes[qs + l] & 0x0f) - m1;
        out[y + 32 + l] = d2 * (bytes[qs + l] >> 4) - m2;
      }
    }
  }
}

export function dequantizeQ5_K(bytes: Uint8Array, out: Float32Array): void {
  const blocks = out.length / QK_K;
  for (let b = 0; b < blocks; b++) {
    const at = b * 176;
    const d = f16At(bytes, at);
    const dmin = f16At(bytes, at + 2);
    const scales = at + 4;
    const qh = at + 16;
    for (let pair = 0; pair < 4; pair++) {
      const d1 = d * scaleK4(bytes, scales, 2 * pair);
      const m1 = dmin * minK4(bytes, scales, 2 * pair);
      const d2 = d * scaleK4(bytes, scales, 2 * pair + 1);
      const m2 = dmin * minK4(bytes, scales, 2 * pair + 1);
      // the fifth bit of sub-block s sits in bit s of qh[l]
      const high1 = 1 << (2 * pair);
      const high2 = 2 << (2 * pair);
      const qs = at + 48 + 32 * pair;
      const y = b * QK_K + 64 * pair;
      for (let l = 0; l < 32; l++) {
        const h = bytes[qh + l];
        out[y + l] = d1 * ((bytes[qs + l] & 0x0f) + (h & high1 ? 16 : 0)) - m1;
        out[y + 32 + l] = d2 * ((bytes[qs + l] >> 4) + (h & high2 ? 16 : 0)) - m2;
      }
    }
  }
}

export function dequantizeQ6_K(bytes: Uint8Array, out: Float32Array): void {
  const blocks = out.length / QK_K;
  for (let b = 0; b < blocks; b++) {
    const at = b * 210;
    const d = f16At(bytes, at + 208);
    // two halves of 128 values, each from 64 bytes of ql, 32 of qh and 8 scales
    for (let half = 0; half < 2; half++) {
      const ql = at + 64 * half;
      const qh = at + 128 + 32 * half;
      const sc = at + 192 + 8 * half;
      const y = b * QK_K + 128 * half;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = bytes[qh + l];
        const q1 = ((bytes[ql + l] & 0x0f) | ((h & 3) << 4)) - 32;
        const q2 = ((bytes[ql + l + 32] & 0x0f) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((bytes[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((bytes[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
        out[y + l] = d * int8At(bytes, sc + is) * q1;
        out[y + l + 32] = d * int8At(bytes, sc + is + 2) * q2;
        out[y + l + 64] = d * int8At(bytes, sc + is + 4) * q3;
        out[y + l + 96] = d * int8At(bytes, sc + is + 6) * q4;
      }
    }
  }
}

/**
 * The 6-bit scale of sub-block j (0..7) from the 12 packed bytes at `at` (ggml's get_scale_min_k4): scales
 * 0..3 are the low 6 bits of bytes 0..3; scales 4..7 take their low 4 bits from the low nibbles of bytes
 * 8..11 and their top 2 bits from the top bits of bytes 0..3.
 */
function scaleK4(bytes: Uint8Array, at: number, j: number): number {
  if (j < 4) return bytes[at + j] & 63;
  return (bytes[at + j + 4] & 0x0f) | ((bytes[at + j - 4] >> 6) << 4);
}

/** The 6-bit min of sub-block j: like `scaleK4`, from bytes 4..7 and the high nibbles of bytes 8..11. */
function minK4(bytes: Uint8Array, at: number, j: number): number {
  if (j < 4) return bytes[at + j + 4] & 63;
  return (bytes[at + j + 4] >> 4) | ((bytes[at + j] >> 6) << 4);
}

function f16At(bytes: Uint8Array, at: number): number {
  return f16BitsToFloat32(bytes[at] | (bytes[at + 1] << 8));
}

function int8At(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 24) >> 24;
}

/** `bytes` itself when a typed array of `itemBytes` can view it in place, else an aligned copy. */
function aligned(bytes: Uint8Array, itemBytes: number): Uint8Array {
  return bytes.byteOffset % itemBytes === 0 ? bytes : bytes.slice();
}
