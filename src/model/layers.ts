import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from './config.ts';
import { batchMatMul } from './matmul.ts';
import { applyRotary } from './rope.ts';
import type { KVCache } from './kv-cache.ts';

/** Looks up a parameter by its Hugging Face name; linear weights are stored [in, out]. */
export type ParamLookup = (name: string) => tf.Tensor | undefined;

/** Applies a named linear projection; the LoRA wrapper intercepts these calls by name. */
export type Projection = (prefix: string, x: tf.Tensor) => tf.Tensor;

export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  const meanSquare = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, eps))), weight);
}

/** Additive causal mask [T, S] for T new positions after S - T cached ones: 0 where allowed, -1e9 elsewhere. */
export function causalMask(T: number, S: number): tf.Tensor2D {
  const offset = S - T;
  const mask = new Float32Array(T * S);
  for (let i = 0; i < T; i++) for (let j = i + offset + 1; j < S; j++) mask[i * S + j] = -1e9;
  return tf.tensor2d(mask, [T, S]);
}

export interface AttentionInputs {
  rope: { cos: tf.Tensor2D; sin: tf.Tensor2D };
  mask: tf.Tensor2D;
  cache?: KVCache;
}

/** Multi-head self-attention with grouped-query heads and rotary positions; x [B, T, D] -> [B, T, D]. */
export function attention(
  x: tf.Tensor3D,
  layer: number,
  config: ModelConfig,
  project: Projection,
  inputs: AttentionInputs,
): tf.Tensor3D {
  const [B, T] = x.shape;
  const { numHeads: H, numKvHeads: KVH, headDim: hd } = config;
  const prefix = `model.layers.${layer}.self_attn`;
  const q = applyRotary(tf.reshape(project(`${prefix}.q_proj`, x), [B, T, H, hd]), inputs.rope.cos, inputs.rope.sin);
  const kNew = applyRotary(tf.reshape(project(`${prefix}.k_proj`, x), [B, T, KVH, hd]), inputs.rope.cos, inputs.rope.sin);
  const vNew = tf.reshape(project(`${prefix}.v_proj`, x), [B, T, KVH, hd]);

  let k = tf.transpose(kNew, [0, 2, 1, 3]) as tf.Tensor4D; // [B, KVH, T, hd]
  let v = tf.transpose(vNew, [0, 2, 1, 3]) as tf.Tensor4D; // [B, KVH, T, hd]
  if (inputs.cache) ({ k, v } = inputs.cache.append(layer, k, v)); // [B, KVH, S, hd]
  const S = k.shape[2];

  const qh = tf.reshape(tf.transpose(tf.mul(q, 1 / Math.sqrt(hd)), [0, 2, 1, 3]), [B * H, T, hd]) as tf.Tensor3D;
  const kT = expandKvHeads(tf.transpose(k, [0, 1, 3, 2]) as tf.Tensor4D, H); // [B*H, hd, S]
  const vh = expandKvHeads(v, H); // [B*H, S, hd]
  const scores = tf.add(batchMatMul(qh, kT), inputs.mask); // [B*H, T, S]
  const context = batchMatMul(tf.softmax(scores) as tf.Tensor3D, vh); // [B*H, T, hd]

  const merged = tf.reshape(tf.transpose(tf.reshape(context, [B, H, T, hd]), [0, 2, 1, 3]), [B, T, H * hd]);
  return project(`${prefix}.o_proj`, merged) as tf.Tensor3D;
}

/**
 * [B, KVH, X, Y] -> [B*H, X, Y], each query head reading its kv group. A gather on axis 1 instead of a
 * rank-5 tile, whose gradient tfjs lacks.
 */
function expandKvHeads(t: tf.Tensor4D, numHeads: number): tf.Tensor3D {
  const [B, KVH, X, Y] = t.shape;
  if (KVH === numHeads) return tf.reshape(t, [B * numHeads, X, Y]);
  const group = numHeads / KVH;
  const headToKv = tf.tensor1d(
    Array.from({ length: numHeads }, (_, h) => Math.floor(h / group)),
    'int32',
  );
  return tf.reshape(tf.gather(t, headToKv, 1), [B * numHeads, X, Y]);
}

/** SwiGLU feed-forward: down(silu(gate(x)) * up(x)). */
export function mlp(x: tf.Tensor3D, layer: number, project: Projection): tf.Tensor3D {
  const prefix = `model.layers.${layer}.mlp`;
  const gate = project(`${prefix}.gate_proj`, x);
  const up = project(`${prefix}.up_proj`, x);
  return project(`${prefix}.down_proj`, tf.mul(tf.mul(gate, tf.sigmoid(gate)), up)) as tf.Tensor3D;
}

/** A pre-norm decoder block: x + attn(norm(x)), then + mlp(norm(.)). */
export function decoderBlock(
  x: tf.Tensor3D,
  layer: number,
  config: ModelConfig,
  param: ParamLookup,
  project: Projection,
  inputs: AttentionInputs,
): tf.Tensor3D {
  const prefix = `model.layers.${layer}`;
  const attnIn = rmsNorm(x, param(`${prefix}.input_layernorm.weight`)!, config.rmsNormEps) as tf.Tensor3D;
  const h = tf.add(x, attention(attnIn, layer, config, project, inputs)) as tf.Tensor3D;
  const mlpIn = rmsNorm(h, param(`${prefix}.post_attention_layernorm.weight`)!, config.rmsNormEps) as tf.Tensor3D;
  return tf.add(h, mlp(mlpIn, layer, project)) as tf.Tensor3D;
}
