import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bf16BitsToFloat32,
  decodeBf16,
  decodeF16,
  encodeBf16,
  encodeF16,
  f16BitsToFloat32,
  float32ToBf16Bits,
  float32ToF16Bits,
} from '../../src/formats/half-float.ts';

const hex = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;

describe('F16', () => {
  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [0, 0x0000],
    [-0, 0x8000],
    [65504, 0x7bff], // largest finite
    [65519, 0x7bff], // just below the rounding midpoint to infinity
    [65520, 0x7c00], // the midpoint rounds to infinity
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -14 - 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and 2^-24 goes to the even 0
    [3 * 2 ** -26, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal units goes to 2
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1 + 2^-10 goes to even 1
    [1 + 3 * 2 ** -11, 0x3c02], // tie goes up to the even mantissa
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
    [1e-10, 0x0000],
    [-1e-10, 0x8000],
  ])('encodes %s as %s', (value, bits) => {
    expect(hex(float32ToF16Bits(value))).toBe(hex(bits));
  });

  it('encodes NaN as a NaN and decodes it as NaN', () => {
    const bits = float32ToF16Bits(NaN);
    expect(bits & 0x7c00).toBe(0x7c00);
    expect(bits & 0x03ff).not.toBe(0);
    expect(f16BitsToFloat32(bits)).toBeNaN();
  });

  it('decodes every non-NaN pattern to a value that encodes back to the same pattern', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = f16BitsToFloat32(bits);
      if (Number.isNaN(value)) {
        expect((bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0).toBe(true);
        continue;
      }
      if (float32ToF16Bits(value) !== bits) expect(hex(float32ToF16Bits(value))).toBe(hex(bits));
    }
  });

  it('rounds any float32 in range to the nearest F16, ties to even', () => {
    fc.assert(
      fc.property(fc.float({ min: -65504, max: 65504, noNaN: true }), (x) => {
        const bits = float32ToF16Bits(x);
        const distance = Math.abs(f16BitsToFloat32(bits) - x);
        // neighbours by magnitude, both signs for values near zero
        for (const neighbour of [bits - 1, bits + 1, bits ^ 0x8000]) {
          if (neighbour < 0 || (neighbour & 0x7fff) >= 0x7c00) continue;
          const other = Math.abs(f16BitsToFloat32(neighbour) - x);
          if (other < distance) return false;
          const tie = other === distance && f16BitsToFloat32(neighbour) !== f16BitsToFloat32(bits);
          if (tie && (bits & 1) === 1) return false;
        }
        return true;
      }),
      { seed: 7, numRuns: 5000 },
    );
  });

  it('converts arrays like the scalar functions', () => {
    const values = Float32Array.from([0, 1, -3.5, 1e-6, 70000, NaN, 0.1]);
    const bits = new Uint16Array(values.length);
    encodeF16(values, bits);
    expect([...bits]).toEqual([...values].map(float32ToF16Bits));
    const back = new Float32Array(values.length);
    decodeF16(bits, back);
    expect([...back]).toEqual([...bits].map(f16BitsToFloat32));
  });
});

describe('BF16', () => {
  it.each([
    [1, 0x3f80],
    [-2, 0xc000],
    [Math.PI, 0x4049],
    [0, 0x0000],
    [-0, 0x8000],
    [1 + 2 ** -8, 0x3f80], // tie goes to even
    [1 + 3 * 2 ** -8, 0x3f82], // tie goes up to even
    [1 + 2 ** -8 + 2 ** -20, 0x3f81],
    [3.4028234663852886e38, 0x7f80], // float32 max rounds to infinity
    [Infinity, 0x7f80],
    [-Infinity, 0xff80],
    [1e-40, 0x0001], // float32 subnormals keep their upper bits
  ])('encodes %s as %s', (value, bits) => {
    expect(hex(float32ToBf16Bits(value))).toBe(hex(bits));
  });

  it('keeps NaN a NaN', () => {
    expect(bf16BitsToFloat32(float32ToBf16Bits(NaN))).toBeNaN();
  });

  it('is exact on values that already fit in 16 bits', () => {
    for (let bits = 0; bits < 0x10000; bits += 7) {
      const value = bf16BitsToFloat32(bits);
      if (!Number.isNaN(value)) expect(float32ToBf16Bits(value)).toBe(bits);
    }
  });

  it('converts arrays like the scalar functions', () => {
    const values = Float32Array.from([0, 1, -3.5, 1e-6, 70000, 0.1, 1e38]);
    const bits = new Uint16Array(values.length);
    encodeBf16(values, bits);
    expect([...bits]).toEqual([...values].map(float32ToBf16Bits));
    const back = new Float32Array(values.length);
    decodeBf16(bits, back);
    expect([...back]).toEqual([...bits].map(bf16BitsToFloat32));
  });
});
