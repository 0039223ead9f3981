import { describe, expect, it } from 'vitest';
import { llama3RopeFactors, ropeScalingFromFactors } from '../../src/model-files/gguf-rope-factors.ts';
import type { Llama3RopeScaling } from '../../src/model/config.ts';
import { Rng } from '../../src/util/rng.ts';

/**
 * convert_hf_to_gguf.py's factors, written from its Python independently of the module: freqs in float32 as
 * torch computes them, the band tests on the wavelength, the result stored as float32.
 */
function converterFactors(s: Llama3RopeScaling, headDim: number, theta: number): Float32Array {
  const f = Math.fround;
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim; i += 2) {
    const wavelen = (2 * Math.PI) / f(1 / f(theta ** f(i / headDim)));
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    out[i / 2] = wavelen < highWavelen ? 1 : wavelen > lowWavelen ? s.factor : 1 / ((1 - smooth) / s.factor + smooth);
  }
  return out;
}

/** Within float32 rounding (the converter's freqs are float32, ours float64). */
function expectRelativelyClose(actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(1e-6 * expected[i]);
}

const llama3 = (factor: number, low: number, high: number, original: number): Llama3RopeScaling => ({
  ropeType: 'llama3',
  factor,
  lowFreqFactor: low,
  highFreqFactor: high,
  originalMaxPositionEmbeddings: original,
});

describe('Llama 3 rope factors', () => {
  it.each([
    ['Llama 3.1 8B', llama3(8, 1, 4, 8192), 128, 500000],
    ['Llama 3.2 1B', llama3(32, 1, 4, 8192), 64, 500000],
    ['tiny-llama fixture (one frequency between the bands)', llama3(8, 1, 4, 16), 8, 10000],
  ])('are written as the converter writes them and read back exactly: %s', (_, scaling, headDim, theta) => {
    const factors = converterFactors(scaling, headDim, theta);
    const written = Float32Array.from(llama3RopeFactors(scaling, headDim, theta));
    expectRelativelyClose(written, factors);
    expect(ropeScalingFromFactors(factors, headDim, theta)).toEqual({ ok: true, scaling });
  });

  it('read back as an equivalent scaling when the four parameters are not identifiable', () => {
    // (low 2, high 8, original 4096) draws the same bands as (1, 4, 2048): the factors cannot tell them apart
    const factors = converterFactors(llama3(4, 2, 8, 4096), 64, 10000);
    const mapped = ropeScalingFromFactors(factors, 64, 10000);
    expect(mapped).toEqual({ ok: true, scaling: llama3(4, 1, 4, 2048) });
    const again = llama3RopeFactors(llama3(4, 1, 4, 2048), 64, 10000);
    expectRelativelyClose(again, factors);
  });

  it('map all-ones factors to no scaling', () => {
    expect(ropeScalingFromFactors(new Float32Array(64).fill(1), 128, 500000)).toEqual({ ok: true, scaling: null });
  });

  it('refuse factors no Llama 3 scaling produces, saying why', () => {
    const rng = new Rng(3);
    const noisy = converterFactors(llama3(8, 1, 4, 8192), 128, 500000).map((f) => f * (1 + 0.01 * rng.normal()));
    expect(ropeScalingFromFactors(noisy, 128, 500000)).toMatchObject({ ok: false });
    expect(ropeScalingFromFactors(new Float32Array(32).fill(1), 128, 500000)).toEqual({
      ok: false,
      reason: 'it holds 32 factors, but a head of 128 dimensions rotates 64 frequencies',
    });
    expect(ropeScalingFromFactors(Float32Array.of(1, 0.5), 4, 10000)).toMatchObject({ ok: false, reason: expect.stringMatching(/below 1/) });
  });
});
