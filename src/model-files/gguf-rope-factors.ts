/**
 * Llama 3 RoPE scaling as llama.cpp stores it: no metadata keys, but a `rope_freqs.weight` tensor of
 * headDim/2 factors, one per rotary frequency, that ggml_rope_ext divides the frequency by
 * (convert_hf_to_gguf.py LlamaModel.generate_extra_tensors; `freq_factors` in ggml's rope):
 *
 *   factor_i = 1                                           wavelength_i < originalMax / highFreqFactor
 *            = factor                                      wavelength_i > originalMax / lowFreqFactor
 *            = 1 / ((1 - smooth_i) / factor + smooth_i)    between, smooth_i = (originalMax / wavelength_i - low) / (high - low)
 *
 * which is the same division src/model/rope.ts applies for `ropeType: 'llama3'`. Writing is that formula.
 * Reading inverts it: the flat ends give `factor`, the band between gives the two wavelength thresholds,
 * and a candidate config is accepted only if its factors reproduce every stored one. The four parameters
 * are not identifiable from the factors (scaling originalMax, low and high together changes nothing),
 * so the reading prefers Llama's own convention (lowFreqFactor 1, an integer originalMax).
 */
import type { Llama3RopeScaling } from '../model/config.ts';

export type RopeFactorsMapping = { ok: true; scaling: Llama3RopeScaling | null } | { ok: false; reason: string };

/** Stored factors are float32: this relative error still counts as the same factor. */
const TOLERANCE = 2e-6;

/** The factors convert_hf_to_gguf.py writes for `scaling`, with the thresholds taken from `scaling` itself. */
export function llama3RopeFactors(scaling: Llama3RopeScaling, headDim: number, theta: number): Float64Array {
  const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: original } = scaling;
  return wavelengths(headDim, theta).map((wavelength) => {
    if (wavelength < original / high) return 1;
    if (wavelength > original / low) return factor;
    const smooth = (original / wavelength - low) / (high - low);
    return 1 / ((1 - smooth) / factor + smooth);
  });
}

/** The Llama 3 scaling whose factors are `factors`, null when every factor is 1, or why there is none. */
export function ropeScalingFromFactors(factors: ArrayLike<number>, headDim: number, theta: number): RopeFactorsMapping {
  if (factors.length !== headDim / 2) {
    return { ok: false, reason: `it holds ${factors.length} factors, but a head of ${headDim} dimensions rotates ${headDim / 2} frequencies` };
  }
  const values = Array.from(factors);
  if (values.some((f) => !Number.isFinite(f) || f < 1 - TOLERANCE)) {
    return { ok: false, reason: 'some factors are below 1 or not finite, which Llama 3 scaling never writes' };
  }
  if (values.every((f) => close(f, 1))) return { ok: true, scaling: null };
  const factor = Math.max(...values);
  if (values.some((f, i) => i > 0 && f < values[i - 1] * (1 - TOLERANCE))) {
    return { ok: false, reason: 'the factors do not grow with the wavelength, as Llama 3 scaling does' };
  }
  const lengths = wavelengths(headDim, theta);
  const bands = classify(values, factor, lengths);
  for (const candidate of candidates(bands, factor)) {
    if (reproduces(candidate, values, headDim, theta)) return { ok: true, scaling: candidate };
  }
  return { ok: false, reason: 'no Llama 3 scaling (factor, low/high frequency factors, original context) reproduces these factors' };
}

function wavelengths(headDim: number, theta: number): Float64Array {
  const lengths = new Float64Array(headDim / 2);
  for (let i = 0; i < lengths.length; i++) lengths[i] = 2 * Math.PI * theta ** ((2 * i) / headDim);
  return lengths;
}

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= TOLERANCE * Math.max(Math.abs(a), Math.abs(b));
}

interface Bands {
  /** Wavelengths of the frequencies kept as they are (factor 1). */
  high: number[];
  /** Wavelengths of the frequencies divided by the full factor (never empty: the largest factor is one). */
  low: number[];
  /** The frequencies between, each with its smooth value (0 at the low band's edge, 1 at the high band's). */
  medium: { wavelength: number; smooth: number }[];
}

function classify(values: number[], factor: number, lengths: Float64Array): Bands {
  const bands: Bands = { high: [], low: [], medium: [] };
  values.forEach((f, i) => {
    if (close(f, 1)) bands.high.push(lengths[i]);
    else if (close(f, factor)) bands.low.push(lengths[i]);
    else bands.medium.push({ wavelength: lengths[i], smooth: (1 / f - 1 / factor) / (1 - 1 / factor) });
  });
  return bands;
}

/**
 * Threshold wavelengths consistent with the bands, most conventional first. smooth is linear in
 * 1 / wavelength, so two medium frequencies fix both thresholds; with fewer, Llama's defaults
 * (low 1, high 4) or the band edges pick one of the many scalings that give the same factors.
 */
function* candidates(bands: Bands, factor: number): Generator<Llama3RopeScaling> {
  const { medium, high, low } = bands;
  const shortestLow = Math.min(...low);
  if (medium.length >= 2) {
    const [first, last] = [medium[0], medium[medium.length - 1]];
    const slope = (last.smooth - first.smooth) / (1 / last.wavelength - 1 / first.wavelength);
    const intercept = first.smooth - slope / first.wavelength;
    yield* fromThresholds(factor, -slope / intercept, slope / (1 - intercept));
  } else if (medium.length === 1) {
    const [{ wavelength, smooth }] = medium;
    // low 1, high 4: smooth = (original / wavelength - 1) / 3
    const original = wavelength * (1 + 3 * smooth);
    yield* fromThresholds(factor, original, original / 4);
    // low 1 and the low band's edge as the original context: solve for high
    yield* fromThresholds(factor, shortestLow, shortestLow / (1 + (shortestLow / wavelength - 1) / smooth));
  } else {
    const longestHigh = high.length > 0 ? Math.max(...high) : shortestLow / 2;
    yield* fromThresholds(factor, Math.floor(shortestLow), Math.floor(shortestLow) / 4);
    yield* fromThresholds(factor, shortestLow, Math.sqrt(shortestLow * longestHigh));
  }
}

/**
 * Scalings with these thresholds (lowWavelength = original / low, highWavelength = original / high): an
 * integer original context with rounded factors first, then the exact ones.
 */
function* fromThresholds(factor: number, lowWavelength: number, highWavelength: number): Generator<Llama3RopeScaling> {
  if (!(lowWavelength > 0 && highWavelength > 0 && lowWavelength > highWavelength)) return;
  const original = Math.max(1, Math.round(lowWavelength));
  const low = original / lowWavelength;
  const high = original / highWavelength;
  const rounded = (x: number) => Number(x.toPrecision(6));
  const scaling = (lowFreqFactor: number, highFreqFactor: number): Llama3RopeScaling => ({
    ropeType: 'llama3',
    factor: rounded(factor),
    lowFreqFactor,
    highFreqFactor,
    originalMaxPositionEmbeddings: original,
  });
  yield scaling(rounded(low), rounded(high));
  yield { ...scaling(low, high), factor };
}

function reproduces(scaling: Llama3RopeScaling, values: number[], headDim: number, theta: number): boolean {
  const expected = llama3RopeFactors(scaling, headDim, theta);
  return values.every((f, i) => close(f, expected[i]));
}
