import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig, RopeScaling } from './config.ts';

/** Rotary frequencies 1 / theta^(2i / headDim), with Llama 3's frequency-dependent scaling when configured. */
export function inverseFrequencies(headDim: number, theta: number, scaling: RopeScaling | null): Float64Array {
  const inv = new Float64Array(headDim / 2);
  for (let i = 0; i < inv.length; i++) inv[i] = 1 / theta ** ((2 * i) / headDim);
  return scaling ? applyLlama3Scaling(inv, scaling) : inv;
}

/**
 * Llama 3.x long-context scaling: long wavelengths are divided by `factor`, short ones kept, and the band
 * between is interpolated (transformers' `_compute_llama3_parameters`).
 */
function applyLlama3Scaling(inv: Float64Array, s: RopeScaling): Float64Array {
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

/** cos and sin of position * frequency for positions [offset, offset + length): each [length, headDim / 2]. */
export function rotaryTables(config: ModelConfig, offset: number, length: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const inv = inverseFrequencies(config.headDim, config.ropeTheta, config.ropeScaling);
  const half = inv.length;
  const cos = new Float32Array(length * half);
  const sin = new Float32Array(length * half);
  for (let t = 0; t < length; t++) {
    for (let i = 0; i < half; i++) {
      const angle = (offset + t) * inv[i];
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos: tf.tensor2d(cos, [length, half]), sin: tf.tensor2d(sin, [length, half]) };
}

/**
 * Rotates query/key vectors x [B, T, H, hd] by position. The HF layout pairs dimension i with i + hd/2
 * ("rotate_half"), not adjacent dimensions; GGUF's interleaved layout is converted on load.
 */
export function applyRotary(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor4D {
  const [B, T, H, hd] = x.shape;
  const half = hd / 2;
  const c = tf.reshape(cos, [1, T, 1, half]);
  const s = tf.reshape(sin, [1, T, 1, half]);
  const x1 = tf.slice(x, [0, 0, 0, 0], [B, T, H, half]);
  const x2 = tf.slice(x, [0, 0, 0, half], [B, T, H, half]);
  return tf.concat([tf.sub(tf.mul(x1, c), tf.mul(x2, s)), tf.add(tf.mul(x2, c), tf.mul(x1, s))], 3) as tf.Tensor4D;
}
