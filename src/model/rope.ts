import * as tf from '@tensorflow/tfjs-core';
import { withWrittenGradient, type WrittenGradient } from '../backend/tape.ts';
import type { Llama3RopeScaling, ModelConfig, RopeScaling } from './config.ts';

/** Rotary frequencies 1 / theta^(2i / dim), with Llama 3's or linear scaling when configured. */
export function inverseFrequencies(dim: number, theta: number, scaling: RopeScaling | null): Float64Array {
  const inv = new Float64Array(dim / 2);
  for (let i = 0; i < inv.length; i++) inv[i] = 1 / theta ** ((2 * i) / dim);
  if (scaling?.ropeType === 'linear') return inv.map((freq) => freq / scaling.factor);
  return scaling ? applyLlama3Scaling(inv, scaling) : inv;
}

/** The config a sliding layer of Gemma 3 rotates by: its local base, unscaled; the model's own elsewhere. */
export function localRopeConfig(config: ModelConfig): ModelConfig {
  return config.localRopeTheta === null ? config : { ...config, ropeTheta: config.localRopeTheta, ropeScaling: null };
}

/**
 * The frequencies and cos/sin scale for a sequence of `length` positions: longrope divides by its short
 * factors while the sequence fits the original context and by its long ones beyond, as transformers does
 * per forward pass.
 */
function rotaryFrequencies(config: ModelConfig, length: number): { inv: Float64Array; scale: number } {
  const inv = inverseFrequencies(config.rotaryDim, config.ropeTheta, config.ropeScaling);
  const long = config.longRope;
  if (!long) return { inv, scale: 1 };
  const factors = length > long.originalMaxPositionEmbeddings ? long.longFactor : long.shortFactor;
  return { inv: inv.map((freq, i) => freq / factors[i]), scale: long.attentionFactor };
}

/**
 * Llama 3.x long-context scaling: long wavelengths are divided by `factor`, short ones kept, and the band
 * between is interpolated (transformers' `_compute_llama3_parameters`).
 */
function applyLlama3Scaling(inv: Float64Array, s: Llama3RopeScaling): Float64Array {
  const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  return inv.map((freq) => {
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highFreqWavelen) return freq;
    if (wavelen > lowFreqWavelen) return freq / s.factor;
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (freq / s.factor) + smooth * freq;
  });
}

/**
 * Tables that rotate the heads of a fused q/k/v projection [B, T, H + 2*KVH, hd] by position, for
 * positions [offset, offset + length): each [length, H + 2*KVH, hd], so `applyRotary` is two elementwise
 * products and a sum over the whole projection. The HF layout pairs dimension i with i + hd/2
 * ("rotate_half"), not adjacent dimensions (GGUF's interleaved layout is converted on load):
 *   out = x * cos + swapHalves(x) * sin,  cos = [c, c],  sin = [-s, s]  (the sign of rotate_half).
 * Query heads are also scaled by `queryScale` (attention's 1/sqrt(hd), folded in here to save a pass
 * over the scores); value heads pass through unchanged (cos 1, sin 0).
 */
export function rotaryTables(
  config: ModelConfig,
  offset: number,
  length: number,
  queryScale: number,
): { cos: tf.Tensor3D; sin: tf.Tensor3D } {
  const { cos, sin } = fillTables(config, 1, length, (_, t) => offset + t, queryScale, offset + length);
  const shape: [number, number, number] = [length, config.numHeads + 2 * config.numKvHeads, config.headDim];
  return { cos: tf.tensor3d(cos, shape), sin: tf.tensor3d(sin, shape) };
}

/**
 * The tables of `rotaryTables` with a position per batch row and step, [B, length, H + 2*KVH, hd] each:
 * step t of row b is at position `positionOf(b, t)`. A left-padded batch puts each row's first real token
 * at position 0 (the padding gets negative positions no query attends to); a packed one restarts at 0 with
 * each example.
 */
export function rowRotaryTables(
  config: ModelConfig,
  rows: number,
  length: number,
  positionOf: (row: number, t: number) => number,
  queryScale: number,
): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  let longest = 0;
  for (let row = 0; row < rows; row++) longest = Math.max(longest, positionOf(row, length - 1) + 1);
  const { cos, sin } = fillTables(config, rows, length, positionOf, queryScale, longest);
  const shape: [number, number, number, number] = [rows, length, config.numHeads + 2 * config.numKvHeads, config.headDim];
  return { cos: tf.tensor4d(cos, shape), sin: tf.tensor4d(sin, shape) };
}

/**
 * cos and sin tables laid out [rows, length, heads, hd], step t of a row at position `positionOf(row, t)`,
 * for a sequence of `sequenceLength` positions in all. Only the first rotaryDim dimensions of a head rotate
 * (pairing i with i + rotaryDim / 2); the others pass (cos 1, sin 0).
 */
function fillTables(
  config: ModelConfig,
  rows: number,
  length: number,
  positionOf: (row: number, t: number) => number,
  queryScale: number,
  sequenceLength: number,
): { cos: Float32Array; sin: Float32Array } {
  const { numHeads: H, numKvHeads: KVH, headDim: hd, rotaryDim } = config;
  const { inv, scale: ropeScale } = rotaryFrequencies(config, sequenceLength);
  const half = rotaryDim / 2;
  const heads = H + 2 * KVH;
  const cos = new Float32Array(rows * length * heads * hd);
  const sin = new Float32Array(rows * length * heads * hd);
  for (let row = 0; row < rows; row++) {
    for (let t = 0; t < length; t++) {
      const position = positionOf(row, t);
      for (let head = 0; head < heads; head++) {
        const at = ((row * length + t) * heads + head) * hd;
        if (head >= H + KVH) {
          cos.fill(1, at, at + hd); // value heads: no rotation
          continue;
        }
        const scale = (head < H ? queryScale : 1) * ropeScale;
        if (rotaryDim < hd) cos.fill(head < H ? queryScale : 1, at + rotaryDim, at + hd); // dimensions that pass
        for (let i = 0; i < half; i++) {
          const angle = position * inv[i];
          cos[at + i] = cos[at + half + i] = Math.cos(angle) * scale;
          sin[at + i] = -Math.sin(angle) * scale;
          sin[at + half + i] = Math.sin(angle) * scale;
        }
      }
    }
  }
  return { cos, sin };
}

/**
 * Rotates the heads of x [B, T, N, hd] with tables [T, N, hd] from `rotaryTables` (or [B, T, N, hd] from
 * `rowRotaryTables`). The gradient is the
 * transposed rotation, dy * cos + swapHalves(dy * sin) (swapping halves is its own transpose), written
 * out so that nothing of x is kept for it and its intermediates are freed when it returns.
 */
export function applyRotary(x: tf.Tensor4D, cos: tf.Tensor3D | tf.Tensor4D, sin: tf.Tensor3D | tf.Tensor4D, rotaryDim = x.shape[3]): tf.Tensor4D {
  const rotate: WrittenGradient = (...args) => {
    const [xs, save] = args as [tf.Tensor4D, tf.GradSaveFunc];
    save([cos, sin]); // the caller may dispose the tables before the backward pass
    return {
      value: tf.add(tf.mul(xs, cos), tf.mul(swapHalves(xs, rotaryDim), sin)),
      gradFunc: (dy: tf.Tensor, [c, s]: tf.Tensor[]) =>
        tf.tidy(() => tf.add(tf.mul(dy, c), swapHalves(tf.mul(dy, s) as tf.Tensor4D, rotaryDim))),
    };
  };
  return withWrittenGradient<tf.Tensor4D>(rotate, [x]);
}

/** [..., hd] -> the same with the two halves of its first `rotaryDim` values exchanged (the rest as they are). */
function swapHalves(x: tf.Tensor4D, rotaryDim: number): tf.Tensor4D {
  const [B, T, N, hd] = x.shape;
  if (rotaryDim === hd) return tf.reshape(tf.reverse(tf.reshape(x, [B, T, N, 2, hd / 2]), 3), x.shape);
  const rotated = tf.slice(x, [0, 0, 0, 0], [B, T, N, rotaryDim]) as tf.Tensor4D;
  return tf.concat([swapHalves(rotated, rotaryDim), tf.slice(x, [0, 0, 0, rotaryDim], [B, T, N, hd - rotaryDim])], 3) as tf.Tensor4D;
}
