/**
 * The K-quant quantizers against ggml's own (`quantize_row_*_ref` in the libggml that node-llama-cpp ships):
 * the same bytes for values of every kind the weights of a model hold, and a round trip whose error shrinks
 * with the bits.
 */
import { describe, expect, it } from 'vitest';
import { dequantize } from '../../../src/formats/gguf/dequantize.ts';
import { quantize, type QuantizableType } from '../../../src/formats/gguf/quantize.ts';
import { Rng } from '../../../src/util/rng.ts';
import { LIBGGML_AVAILABLE, referenceDequantizer, referenceQuantizer } from '../../helpers/libggml.ts';

/** 256-value super-blocks of the shapes quantizers meet: normal weights, outliers, one sign, zeros, constants, tiny and huge scales. */
function superBlocks(seed: number): Float32Array {
  const rng = new Rng(seed);
  const blocks: number[][] = [
    Array.from({ length: 256 }, () => rng.normal() * 0.02),
    Array.from({ length: 256 }, (_, i) => (i % 37 === 0 ? 8 : 1) * rng.normal()),
    Array.from({ length: 256 }, () => Math.abs(rng.normal())),
    Array.from({ length: 256 }, () => -Math.abs(rng.normal()) * 3),
    Array.from({ length: 256 }, () => 0),
    Array.from({ length: 256 }, () => 0.5),
    Array.from({ length: 256 }, (_, i) => (i < 128 ? 0 : rng.normal() * 1e-6)),
    Array.from({ length: 256 }, () => rng.normal() * 300),
    Array.from({ length: 256 }, (_, i) => Math.sin(i / 7) + (i % 32 === 5 ? 2 : 0)),
  ];
  for (let extra = 0; extra < 40; extra++) blocks.push(Array.from({ length: 256 }, () => rng.normal() * 10 ** (rng.next() * 4 - 3)));
  return Float32Array.from(blocks.flat());
}

describe.skipIf(!LIBGGML_AVAILABLE)('K-quants, their fallbacks and the legacy types, byte for byte as ggml writes them', () => {
  it.each<[QuantizableType, string]>([
    ['Q4_K', 'q4_K'],
    ['Q5_K', 'q5_K'],
    ['Q6_K', 'q6_K'],
    ['Q5_0', 'q5_0'],
    ['Q5_1', 'q5_1'],
    ['Q8_0', 'q8_0'],
    ['Q4_0', 'q4_0'],
  ])('%s', (type, ggmlName) => {
    const values = superBlocks(7);
    const ours = quantize(type, values);
    const theirs = new Uint8Array(ours.length);
    referenceQuantizer(ggmlName)(values, theirs);
    const first = ours.findIndex((byte, i) => byte !== theirs[i]);
    expect(first, `first differing byte of ${ours.length}`).toBe(-1);
    const decoded = new Float32Array(values.length);
    referenceDequantizer(ggmlName)(theirs, decoded);
    expect(dequantize(type as Parameters<typeof dequantize>[0], theirs)).toEqual(decoded);
  });
});

describe('K-quant round trips', () => {
  it('lose less with more bits: Q6_K < Q5_K < Q4_K (RMS error on normal weights), and decode what they encode', () => {
    const rng = new Rng(3);
    const values = Float32Array.from({ length: 256 * 64 }, () => rng.normal() * 0.02);
    const rms = (type: QuantizableType) => {
      const decoded = dequantize(type as Parameters<typeof dequantize>[0], quantize(type, values));
      return Math.sqrt(decoded.reduce((sum, v, i) => sum + (v - values[i]) ** 2, 0) / values.length) / 0.02;
    };
    const [q4, q5, q6] = [rms('Q4_K'), rms('Q5_K'), rms('Q6_K')];
    expect(q6).toBeLessThan(q5);
    expect(q5).toBeLessThan(q4);
    expect(q4).toBeLessThan(0.12); // a 4-bit grid over ~6 sigma: ~0.07 of sigma
  });
});
