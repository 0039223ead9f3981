/**
 * Float32 to the K-quants (super-blocks of 256 values), after ggml's reference quantizers in
 * `src/ggml-quants.c` (`quantize_row_q4_K_ref`, `quantize_row_q5_K_ref`, `quantize_row_q6_K_ref` and their
 * helpers `make_qkx2_quants`, `make_qx_quants`, `nearest_int`), which llama-quantize runs when it has no
 * importance matrix. Every operation is rounded to float32 as C's float arithmetic does, so the bytes are
 * ggml's own (checked against libggml in the tests). Block layouts: see dequantize.ts.
 */
import { f16BitsToFloat32, float32ToF16Bits } from '../half-float.ts';
import { QK_K } from './constants.ts';

const f = Math.fround;
/** ggml's GROUP_MAX_EPS: a group whose largest magnitude is below it is all zeros. */
const GROUP_MAX_EPS = f(1e-15);
const TENTH = f(0.1);

/** ggml's nearest_int: round half to even through the float32 sum with 1.5 * 2^23. */
function nearestInt(value: number): number {
  return f(f(value) + 12582912) - 12582912;
}

/** A float stored as f16, and the float32 it reads back as. */
function toF16(value: number): { bits: number; value: number } {
  const bits = float32ToF16Bits(value);
  return { bits, value: f16BitsToFloat32(bits) };
}

function writeU16(out: Uint8Array, at: number, bits: number): void {
  out[at] = bits & 0xff;
  out[at + 1] = bits >> 8;
}

/** Scratch for one sub-block's search. */
interface SubBlock {
  weights: Float32Array;
  aux: Uint8Array;
}

/**
 * make_qkx2_quants: an affine grid (scale, min) for n values, L[i] in [0, nmax], weighted least squares over
 * nstep + 1 candidate scales around nmax / (max - min). Returns the scale and minus the min.
 */
function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  from: number,
  L: Uint8Array,
  lFrom: number,
  { weights, aux }: SubBlock,
  rmin: number,
  rdelta: number,
  nstep: number,
): { scale: number; negativeMin: number } {
  let min = x[from];
  let max = x[from];
  let sumW = weights[0];
  let sumX = f(sumW * x[from]);
  for (let i = 1; i < n; i++) {
    const v = x[from + i];
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = f(sumW + weights[i]);
    sumX = f(sumX + f(weights[i] * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lFrom, lFrom + n);
    return { scale: 0, negativeMin: -min };
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(x[from + i] - min)))));
    L[lFrom + i] = l;
    const diff = f(f(f(scale * l) + min) - x[from + i]);
    bestError = f(bestError + f(weights[i] * f(diff * diff)));
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXl = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(x[from + i] - min)))));
      aux[i] = l;
      const wl = f(weights[i] * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXl = f(sumXl + f(wl * x[from + i]));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (!(D > 0)) continue;
    let thisScale = f(f(f(sumW * sumXl) - f(sumX * sumL)) / D);
    let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXl)) / D);
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = f(sumXl / sumL2);
    }
    let error = 0;
    for (let i = 0; i < n; i++) {
      const diff = f(f(f(thisScale * aux[i]) + thisMin) - x[from + i]);
      error = f(error + f(weights[i] * f(diff * diff)));
    }
    if (error < bestError) {
      for (let i = 0; i < n; i++) L[lFrom + i] = aux[i];
      bestError = error;
      scale = thisScale;
      min = thisMin;
    }
  }
  return { scale, negativeMin: -min };
}

/** The 12 bytes holding eight 6-bit scales and mins (the inverse of ggml's get_scale_min_k4). */
function packScalesAndMins(out: Uint8Array, at: number, scales: Uint8Array, mins: Uint8Array): void {
  out.fill(0, at, at + 12);
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      out[at + j] = scales[j];
      out[at + j + 4] = mins[j];
    } else {
      out[at + j + 4] = (scales[j] & 0xf) | ((mins[j] & 0xf) << 4);
      out[at + j - 4] |= (scales[j] >> 4) << 6;
      out[at + j] |= (mins[j] >> 4) << 6;
    }
  }
}

/**
 * Q4_K and Q5_K share their scales: per sub-block of 32, an affine grid from make_qkx2_quants with weights
 * |x| + rms; the scales and mins quantized to 6 bits against the block's largest, then every value
 * requantized against the stored (f16 x 6-bit) scale and min. Returns the levels of the 256 values.
 */
function affineSuperBlock(values: Float32Array, from: number, out: Uint8Array, at: number, nmax: number, rmin: number, nstep: number, sub: SubBlock): Uint8Array {
  const L = new Uint8Array(QK_K);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const start = from + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(values[start + l] * values[start + l]));
    const averageX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) sub.weights[l] = f(averageX + Math.abs(values[start + l]));
    const { scale, negativeMin } = makeQkx2Quants(32, nmax, values, start, L, 32 * j, sub, rmin, TENTH, nstep);
    scales[j] = scale;
    mins[j] = negativeMin;
    if (scale > maxScale) maxScale = scale;
    if (negativeMin > maxMin) maxMin = negativeMin;
  }
  const inverseScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const inverseMin = maxMin > 0 ? f(63 / maxMin) : 0;
  const scaleLevels = new Uint8Array(8);
  const minLevels = new Uint8Array(8);
  for (let j = 0; j < 8; j++) {
    scaleLevels[j] = Math.min(63, nearestInt(f(inverseScale * scales[j])) & 0xff);
    minLevels[j] = Math.min(63, nearestInt(f(inverseMin * mins[j])) & 0xff);
  }
  packScalesAndMins(out, at + 4, scaleLevels, minLevels);
  const d = toF16(f(maxScale / 63));
  const dmin = toF16(f(maxMin / 63));
  writeU16(out, at, d.bits);
  writeU16(out, at + 2, dmin.bits);
  for (let j = 0; j < 8; j++) {
    const scale = f(d.value * scaleLevels[j]);
    if (!scale) continue;
    const offset = f(dmin.value * minLevels[j]);
    for (let i = 0; i < 32; i++) {
      L[32 * j + i] = Math.max(0, Math.min(nmax, nearestInt(f(f(values[from + 32 * j + i] + offset) / scale))));
    }
  }
  return L;
}

/** Q4_K (144 bytes per 256): d, dmin, 12 bytes of scales and mins, then 4-bit levels two sub-blocks per 32 bytes. */
export function quantizeQ4_K(values: Float32Array, out: Uint8Array): void {
  const sub = subBlockScratch();
  for (let b = 0; b < values.length / QK_K; b++) {
    const at = b * 144;
    const L = affineSuperBlock(values, b * QK_K, out, at, 15, f(-1), 20, sub);
    for (let pair = 0; pair < 4; pair++) {
      for (let l = 0; l < 32; l++) out[at + 16 + 32 * pair + l] = L[64 * pair + l] | (L[64 * pair + 32 + l] << 4);
    }
  }
}

/** Q5_K (176 bytes per 256): as Q4_K with 5-bit levels, the fifth bits in 32 bytes of qh. */
export function quantizeQ5_K(values: Float32Array, out: Uint8Array): void {
  const sub = subBlockScratch();
  for (let b = 0; b < values.length / QK_K; b++) {
    const at = b * 176;
    const L = affineSuperBlock(values, b * QK_K, out, at, 31, f(-0.5), 15, sub);
    out.fill(0, at + 16, at + 48);
    for (let pair = 0; pair < 4; pair++) {
      for (let j = 0; j < 32; j++) {
        let low = L[64 * pair + j];
        let high = L[64 * pair + 32 + j];
        if (low > 15) {
          low -= 16;
          out[at + 16 + j] |= 1 << (2 * pair);
        }
        if (high > 15) {
          high -= 16;
          out[at + 16 + j] |= 2 << (2 * pair);
        }
        out[at + 48 + 32 * pair + j] = low | (high << 4);
      }
    }
  }
}

/**
 * make_qx_quants with rmse_type 1: a symmetric grid L in [-nmax, nmax), weighted by x^2, the best of 19
 * scales around -nmax / max. Returns the scale; `L` gets levels + nmax.
 */
function makeQxQuants(n: number, nmax: number, x: Float32Array, from: number, L: Int8Array, lFrom: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const magnitude = Math.abs(x[from + i]);
    if (magnitude > amax) {
      amax = magnitude;
      max = x[from + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lFrom, lFrom + n);
    return 0;
  }
  const sums = (iscale: number, store: boolean) => {
    let sumLx = 0;
    let sumL2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[from + i];
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f(iscale * v))));
      if (store) L[lFrom + i] = l + nmax;
      const w = f(v * v);
      sumLx = f(sumLx + f(f(w * v) * l));
      sumL2 = f(sumL2 + f(f(w * l) * l));
    }
    return { sumLx, sumL2 };
  };
  const first = sums(f(-nmax / max), true);
  let scale = first.sumL2 ? f(first.sumLx / first.sumL2) : 0;
  let best = f(scale * first.sumLx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = f(-f(nmax + f(TENTH * is)) / max);
    const { sumLx, sumL2 } = sums(iscale, false);
    if (sumL2 > 0 && f(sumLx * sumLx) > f(best * sumL2)) {
      sums(iscale, true);
      scale = f(sumLx / sumL2);
      best = f(scale * sumLx);
    }
  }
  return scale;
}

/** Q6_K (210 bytes per 256): 6-bit levels (low 4 bits in ql, high 2 in qh), an int8 scale per 16, one f16 d. */
export function quantizeQ6_K(values: Float32Array, out: Uint8Array): void {
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  for (let b = 0; b < values.length / QK_K; b++) {
    const at = b * 210;
    const from = b * QK_K;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants(16, 32, values, from + 16 * ib, L, 16 * ib);
      scales[ib] = scale;
      if (Math.abs(scale) > maxAbsScale) {
        maxAbsScale = Math.abs(scale);
        maxScale = scale;
      }
    }
    out.fill(0, at, at + 210);
    if (maxAbsScale < GROUP_MAX_EPS) continue;
    const iscale = f(-128 / maxScale);
    const d = toF16(f(1 / iscale));
    writeU16(out, at + 208, d.bits);
    const scaleLevels = new Int8Array(16);
    for (let ib = 0; ib < 16; ib++) scaleLevels[ib] = Math.min(127, nearestInt(f(iscale * scales[ib])));
    out.set(new Uint8Array(scaleLevels.buffer), at + 192);
    for (let j = 0; j < 16; j++) {
      const scale = f(d.value * scaleLevels[j]);
      if (!scale) continue;
      for (let i = 0; i < 16; i++) L[16 * j + i] = Math.max(-32, Math.min(31, nearestInt(f(values[from + 16 * j + i] / scale)))) + 32;
    }
    for (let half = 0; half < 2; half++) {
      const ql = at + 64 * half;
      const qh = at + 128 + 32 * half;
      const j = 128 * half;
      for (let l = 0; l < 32; l++) {
        const [q1, q2, q3, q4] = [L[j + l], L[j + l + 32], L[j + l + 64], L[j + l + 96]];
        out[ql + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
        out[ql + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
        out[qh + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
      }
    }
  }
}

function subBlockScratch(): SubBlock {
  return { weights: new Float32Array(32), aux: new Uint8Array(32) };
}
