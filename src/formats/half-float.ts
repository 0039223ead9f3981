/**
 * IEEE half precision (F16: 1 sign, 5 exponent, 10 mantissa bits) and bfloat16 (BF16: the upper 16 bits of
 * a float32) to and from float32, rounding to nearest with ties to even as PyTorch and numpy do.
 * Arrays are converted in place into caller-provided outputs so large tensors can be done in chunks.
 */

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

function float32Bits(value: number): number {
  scratch[0] = value;
  return scratchBits[0];
}

/** F16 bits of float32 bits: overflow goes to infinity, tiny values to subnormals or signed zero. */
function f16FromFloat32Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) {
    // keep NaN a NaN even when its payload lives only in the low bits that are dropped
    return mantissa === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mantissa >>> 13);
  }
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // below 2^-25 everything rounds to zero (2^-25 itself is a tie that goes to the even zero)
    if (halfExponent < -10) return sign;
    return sign | roundShift(mantissa | 0x800000, 14 - halfExponent);
  }
  // a carry out of the mantissa correctly bumps the exponent, up to infinity
  return sign | roundShift((halfExponent << 23) | mantissa, 13);
}

/** value >> shift, rounded to nearest, ties to even (shift <= 24). */
function roundShift(value: number, shift: number): number {
  const half = 1 << (shift - 1);
  const remainder = value & ((1 << shift) - 1);
  const truncated = value >>> shift;
  return remainder > half || (remainder === half && (truncated & 1) === 1) ? truncated + 1 : truncated;
}

function float32FromF16Bits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

function bf16FromFloat32Bits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40; // quiet NaN
  // adding 0x7fff plus the lowest kept bit rounds to nearest even; the carry can reach infinity as it should
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

export function float32ToF16Bits(value: number): number {
  return f16FromFloat32Bits(float32Bits(value));
}

export function f16BitsToFloat32(bits: number): number {
  return float32FromF16Bits(bits & 0xffff);
}

export function float32ToBf16Bits(value: number): number {
  return bf16FromFloat32Bits(float32Bits(value));
}

export function bf16BitsToFloat32(bits: number): number {
  scratchBits[0] = (bits & 0xffff) << 16;
  return scratch[0];
}

let f16Table: Float32Array | undefined;

/** Every F16 bit pattern decoded once (256 KB), so decoding a tensor is one lookup per value. */
function f16DecodeTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) f16Table[bits] = float32FromF16Bits(bits);
  }
  return f16Table;
}

function bitsView(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

export function encodeF16(source: Float32Array, target: Uint16Array): void {
  const bits = bitsView(source);
  for (let i = 0; i < bits.length; i++) target[i] = f16FromFloat32Bits(bits[i]);
}

export function decodeF16(source: Uint16Array, target: Float32Array): void {
  const table = f16DecodeTable();
  for (let i = 0; i < source.length; i++) target[i] = table[source[i]];
}

export function encodeBf16(source: Float32Array, target: Uint16Array): void {
  const bits = bitsView(source);
  for (let i = 0; i < bits.length; i++) target[i] = bf16FromFloat32Bits(bits[i]);
}

export function decodeBf16(source: Uint16Array, target: Float32Array): void {
  const bits = bitsView(target);
  for (let i = 0; i < source.length; i++) bits[i] = source[i] << 16;
}
