import { describe, expect, it } from 'vitest';
import { dequantize } from '../../../src/formats/gguf/dequantize.ts';
import { quantize } from '../../../src/formats/gguf/quantize.ts';
import { float32ToF16Bits } from '../../../src/formats/half-float.ts';
import { Rng } from '../../../src/util/rng.ts';
import { f16 } from './gguf-bytes.ts';

const scratch = new Float32Array(1);
/** float32 rounding, the way C's float arithmetic stores each result. */
function float(value: number): number {
  scratch[0] = value;
  return scratch[0];
}

/**
 * ggml's quantize_row_q8_0_ref restated: amax = MAX over |x| (the macro `a > b ? a : b`), d = amax / 127,
 * id = d ? 1 / d : 0, q = roundf(x * id) (halves away from zero), d stored as f16. All in float32.
 */
function referenceQ8_0(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < x.length / 32; b++) {
    const block = x.subarray(32 * b, 32 * b + 32);
    const amax = block.reduce((max, v) => (max > Math.abs(v) ? max : Math.abs(v)), 0);
    const d = float(amax / 127);
    const id = d ? float(1 / d) : 0;
    view.setUint16(34 * b, float32ToF16Bits(d), true);
    block.forEach((v, j) => {
      const x0 = float(v * id);
      view.setInt8(34 * b + 2 + j, x0 < 0 ? -Math.floor(-x0 + 0.5) : Math.floor(x0 + 0.5));
    });
  }
  return out;
}

/**
 * quantize_row_q4_0_ref as gguf-py's quants.py reproduces it: m = the value of largest magnitude (first one
 * on ties), d = m / -8, id = 1 / d, q = min(15, trunc(x * id + 8.5)) with the sum rounded to float once.
 */
function referenceQ4_0(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 18);
  const view = new DataView(out.buffer);
  for (let b = 0; b < x.length / 32; b++) {
    const block = [...x.subarray(32 * b, 32 * b + 32)];
    const m = block.reduce((best, v) => (Math.abs(v) > Math.abs(best) ? v : best), 0);
    const d = float(m / -8);
    const id = d ? float(1 / d) : 0;
    const q = block.map((v) => Math.min(15, Math.trunc(float(v * id + 8.5))));
    view.setUint16(18 * b, float32ToF16Bits(d), true);
    for (let j = 0; j < 16; j++) out[18 * b + 2 + j] = q[j] | (q[j + 16] << 4);
  }
  return out;
}

/** Blocks that stress the edges: zeros, exact halves, a negative extreme, tiny values, a scale beyond f16 range. */
function edgeBlocks(): Float32Array {
  const blocks = [
    new Array(32).fill(0),
    Array.from({ length: 32 }, (_, j) => (j === 0 ? 127 : j - 15.5)), // d = 1: every other value a tie
    Array.from({ length: 32 }, (_, j) => (j === 5 ? -3 : j / 40)),
    Array.from({ length: 32 }, (_, j) => (j + 1) * 1e-7),
    Array.from({ length: 32 }, (_, j) => (j % 2 ? 1 : -1) * 1e7),
    Array.from({ length: 32 }, (_, j) => (j === 31 ? 8 : -8 + j * 0.25)), // two values of equal magnitude
  ];
  return Float32Array.from(blocks.flat());
}

function randomValues(rng: Rng, blocks: number): Float32Array {
  const x = new Float32Array(32 * blocks);
  for (let b = 0; b < blocks; b++) {
    const scale = 10 ** (rng.int(9) - 5);
    for (let j = 0; j < 32; j++) x[32 * b + j] = rng.normal() * scale;
  }
  return x;
}

describe('Q8_0 quantization', () => {
  it('matches the ggml reference formula bit for bit', () => {
    const x = Float32Array.from([...edgeBlocks(), ...randomValues(new Rng(7), 200)]);
    expect(quantize('Q8_0', x)).toEqual(referenceQ8_0(x));
  });

  it('rounds halves away from zero', () => {
    const x = Float32Array.from({ length: 32 }, (_, j) => [127, 0.5, -0.5, 1.5, -2.5, 2.5][j] ?? 0);
    const q = new Int8Array(quantize('Q8_0', x).buffer, 2, 32);
    expect([...q.subarray(0, 6)]).toEqual([127, 1, -1, 2, -3, 3]);
  });

  it('dequantizes to within half a step plus the f16 rounding of the scale', () => {
    const x = randomValues(new Rng(8), 50);
    const bytes = quantize('Q8_0', x);
    const y = dequantize('Q8_0', bytes);
    for (let b = 0; b < 50; b++) {
      const amax = Math.max(...x.subarray(32 * b, 32 * b + 32).map(Math.abs));
      const d = amax / 127;
      const stored = f16(bytes[34 * b] | (bytes[34 * b + 1] << 8));
      for (let j = 32 * b; j < 32 * b + 32; j++) expect(Math.abs(x[j] - y[j])).toBeLessThanOrEqual(d / 2 + 127 * Math.abs(d - stored) + 1e-12);
    }
  });
});

describe('Q4_0 quantization', () => {
  it('matches the reference formula bit for bit', () => {
    const x = Float32Array.from([...edgeBlocks(), ...randomValues(new Rng(9), 200)]);
    expect(quantize('Q4_0', x)).toEqual(referenceQ4_0(x));
  });

  it('maps the largest-magnitude value to -8 steps exactly', () => {
    const x = Float32Array.from({ length: 32 }, (_, j) => (j === 3 ? -4 : j / 16));
    const y = dequantize('Q4_0', quantize('Q4_0', x));
    expect(y[3]).toBe(-4);
    for (let j = 0; j < 32; j++) expect(Math.abs(x[j] - y[j])).toBeLessThanOrEqual(0.25 + 1e-7); // d = 0.5
  });
});

describe('F16 and BF16', () => {
  it('round to nearest even within their precision', () => {
    const x = Float32Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11, -65504, 1e-3, 1 + 2 ** -8, 1 + 3 * 2 ** -8]);
    expect([...dequantize('F16', quantize('F16', x)).subarray(0, 4)]).toEqual([1, 1 + 2 ** -9, -65504, f16(0x1419)]);
    expect([...dequantize('BF16', quantize('BF16', x)).subarray(4)]).toEqual([1, 1 + 2 ** -6]);
  });

  it('rejects a value count that is not whole blocks', () => {
    expect(() => quantize('Q8_0', new Float32Array(31))).toThrow(/whole number of Q8_0 blocks/);
  });
});
