import * as tf from '@tensorflow/tfjs-core';
import { withWrittenGradient, type WrittenGradient } from '../backend/tape.ts';
import { BLOCK_POSITIONS, causalAttention, type FirstVisibleKey } from './causal-attention.ts';
import type { ModelConfig } from './config.ts';
import { canFuse, fusedDecodeAttention, fusedRmsNorm } from './fused-ops.ts';
import { applyRotary } from './rope.ts';
import type { KVCache } from './kv-cache.ts';
import type { RandomState } from './recompute.ts';

/** Looks up a parameter by its Hugging Face name; linear weights are stored [in, out]. */
export type ParamLookup = (name: string) => tf.Tensor | undefined;

/**
 * Applies named linear projections that read the same input (q/k/v, gate/up) and returns their outputs
 * side by side along the last axis, [..., sum of outs]: one product instead of several. The LoRA wrapper
 * intercepts these calls by name.
 */
export type Projection = ((prefixes: string[], x: tf.Tensor) => tf.Tensor) & {
  /** Trainable variables the projection reads besides the model's own (LoRA adapters), by name. */
  variables?: ReadonlyMap<string, tf.Variable>;
  /** Random state it draws from (dropout), replayed when a layer is recomputed. */
  randomState?: RandomState;
};

/**
 * x / sqrt(mean(x^2) + eps) * weight over the last axis. The gradient is written out: half the ops
 * autodiff builds through mean and rsqrt, and its intermediates are freed as soon as it returns.
 */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  if (canFuse('rmsNorm')) return fusedRmsNorm(x, weight, eps);
  const norm: WrittenGradient = (...args) => {
    const [xs, w, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const inverseRms = tf.rsqrt(tf.add(tf.mean(tf.mul(xs, xs), -1, true), eps)); // [..., 1]
    const normalized = tf.mul(xs, inverseRms);
    save([normalized, inverseRms, w]);
    return {
      value: tf.mul(normalized, w),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [n, r, sw] = saved;
          const dNormalized = tf.mul(dy, sw);
          // d/dx of x * r, where r depends on x through the mean: r * (g - n * mean(g * n)).
          const dx = tf.mul(r, tf.sub(dNormalized, tf.mul(n, tf.mean(tf.mul(dNormalized, n), -1, true))));
          return [dx, sumRows(tf.mul(dy, n))];
        }),
    };
  };
  return withWrittenGradient(norm, [x, weight]);
}

/** The norm at `name` as the config applies it: its weight, or (1 + weight) where the weights sit around 0 (Gemma). */
export function configuredRmsNorm(x: tf.Tensor, name: string, config: ModelConfig, param: ParamLookup): tf.Tensor {
  const weight = param(name);
  if (!weight) throw new Error(`model has no parameter ${name}`);
  return rmsNorm(x, config.normWeightOffset === 0 ? weight : tf.add(weight, config.normWeightOffset), config.rmsNormEps);
}

/**
 * Sum over every axis but the last: [..., D] -> [D]. As a product with a column of ones, because a sum
 * over leading axes runs on wasm as a transpose in the stock C++ kernel (5 ms for [2048, 256]) and then a
 * reduction.
 */
function sumRows(x: tf.Tensor): tf.Tensor1D {
  const D = x.shape[x.rank - 1];
  const rows = x.size / D;
  return tf.reshape(tf.matMul(tf.reshape(x, [rows, D]) as tf.Tensor2D, tf.ones([rows, 1]), true, false), [D]);
}

export interface AttentionInputs {
  /**
   * From `rotaryTables`: [T, H + 2*KVH, hd] each, query heads pre-scaled by 1/sqrt(hd); or from
   * `rowRotaryTables`, [B, T, H + 2*KVH, hd], when rows start at different positions.
   */
  rope: { cos: tf.Tensor3D | tf.Tensor4D; sin: tf.Tensor3D | tf.Tensor4D };
  cache?: KVCache;
  /** Per batch row b and position (cached ones counted), the first key it sees: left padding, packing. */
  firstKey?: FirstVisibleKey;
}

/** Multi-head self-attention with grouped-query heads and rotary positions; x [B, T, D] -> [B, T, D]. */
export function attention(
  x: tf.Tensor3D,
  layer: number,
  config: ModelConfig,
  param: ParamLookup,
  project: Projection,
  inputs: AttentionInputs,
): tf.Tensor3D {
  const [B, T] = x.shape;
  const { numHeads: H, numKvHeads: KVH, headDim: hd } = config;
  const group = H / KVH;
  const prefix = `model.layers.${layer}.self_attn`;
  const qkv = project([`${prefix}.q_proj`, `${prefix}.k_proj`, `${prefix}.v_proj`], x); // [B, T, (H+2KVH)*hd]
  let heads = tf.reshape(qkv, [B, T, H + 2 * KVH, hd]) as tf.Tensor4D;
  if (config.qkNorm) heads = normalizeQueriesAndKeys(heads, prefix, config, param);
  if (inputs.cache && T === 1 && canFuse('decodeAttention')) {
    const context = decodeStep(tf.reshape(heads, [B, (H + 2 * KVH) * hd]) as tf.Tensor2D, layer, config, inputs.cache, inputs);
    return project([`${prefix}.o_proj`], tf.reshape(context, [B, T, H * hd])) as tf.Tensor3D;
  }
  const [q, kNew, vNew] = tf.split(applyRotary(heads, inputs.rope.cos, inputs.rope.sin, config.rotaryDim), [H, KVH, KVH], 2);
  const headsFirst = (t: tf.Tensor) => tf.transpose(t, [0, 2, 1, 3]) as tf.Tensor4D; // [B, KVH, T, hd]
  const { k, v } = inputs.cache
    ? inputs.cache.append(layer, headsFirst(kNew), headsFirst(vNew))
    : { k: headsFirst(kNew), v: headsFirst(vNew) }; // [B, KVH, S, hd]
  const S = k.shape[2];
  // A windowed cache holds the latest positions only: its key i is position `dropped` + i.
  const dropped = inputs.cache?.dropped(layer) ?? 0;
  const firstKey = inputs.firstKey && ((b: number, position: number) => Math.max(0, inputs.firstKey!(b, position + dropped) - dropped));

  // GQA without repeating keys: query head h reads kv head floor(h / group), so the query heads of one kv
  // head are neighbours, and each kv head's queries form one matrix of T*group rows ordered (t, head).
  const grouped = tf.transpose(tf.reshape(q, [B, T, KVH, group * hd]), [0, 2, 1, 3]); // [B, KVH, T, group*hd]
  const context = causalAttention(
    tf.reshape(grouped, [B * KVH, T * group, hd]) as tf.Tensor3D,
    tf.reshape(k, [B * KVH, S, hd]) as tf.Tensor3D,
    tf.reshape(v, [B * KVH, S, hd]) as tf.Tensor3D,
    S - T,
    BLOCK_POSITIONS,
    firstKey && ((n, position) => firstKey(Math.floor(n / KVH), position)), // rows ordered (b, kv head)
    config.attnLogitSoftcap,
  ); // [B*KVH, T*group, hd]
  const merged = tf.transpose(tf.reshape(context, [B, KVH, T, group * hd]), [0, 2, 1, 3]); // [B, T, KVH, group*hd]
  return project([`${prefix}.o_proj`], tf.reshape(merged, [B, T, H * hd])) as tf.Tensor3D;
}

/**
 * Attention of one decoding step, B rows of one new position each, as one fused kernel writing into the
 * cache's buffers: qkv [B, (H + 2 KVH) * hd] -> context [B, H * hd].
 */
function decodeStep(qkv: tf.Tensor2D, layer: number, config: ModelConfig, cache: KVCache, inputs: AttentionInputs): tf.Tensor2D {
  const [B] = qkv.shape;
  const { numHeads, numKvHeads, headDim, rotaryDim } = config;
  const slot = cache.decodeSlot(layer, [B, numKvHeads, headDim]);
  // Buffer index i holds position dropped + i; the new one is at slot.at.
  const dropped = cache.dropped(layer);
  const firstKeys = Array.from({ length: B }, (_, b) => (inputs.firstKey ? Math.max(0, inputs.firstKey(b, slot.at + dropped) - dropped) : 0));
  const attrs = { numHeads, numKvHeads, headDim, rotaryDim, firstKeys, scoreCap: config.attnLogitSoftcap ?? 0 };
  return fusedDecodeAttention(qkv, inputs.rope, slot, attrs);
}

/** RMSNorm over each query and key head (Qwen3, Gemma 3), [B, T, H+2KVH, hd] -> same, values untouched. */
function normalizeQueriesAndKeys(heads: tf.Tensor4D, prefix: string, config: ModelConfig, param: ParamLookup): tf.Tensor4D {
  const { numHeads: H, numKvHeads: KVH } = config;
  const [q, k, v] = tf.split(heads, [H, KVH, KVH], 2);
  const qNormed = configuredRmsNorm(q, `${prefix}.q_norm.weight`, config, param);
  const kNormed = configuredRmsNorm(k, `${prefix}.k_norm.weight`, config, param);
  return tf.concat([qNormed, kNormed, v], 2) as tf.Tensor4D;
}

/** Gated feed-forward: down(act(gate(x)) * up(x)), gate and up as one product (SwiGLU, or GeGLU in Gemma). */
export function mlp(x: tf.Tensor3D, layer: number, config: ModelConfig, project: Projection): tf.Tensor3D {
  const prefix = `model.layers.${layer}.mlp`;
  const gateUp = project([`${prefix}.gate_proj`, `${prefix}.up_proj`], x); // [B, T, 2F]
  return project([`${prefix}.down_proj`], gatedActivation(gateUp, GATES[config.hiddenActivation])) as tf.Tensor3D;
}

/** A gate's activation a(g) and its derivative a'(g), from the gate and what the forward pass kept. */
interface Gate {
  /** a(g), and the tensors the derivative needs. */
  forward(gate: tf.Tensor): { value: tf.Tensor; kept: tf.Tensor[] };
  derivative(gate: tf.Tensor, kept: tf.Tensor[]): tf.Tensor;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;

const GATES: Record<ModelConfig['hiddenActivation'], Gate> = {
  silu: {
    forward(gate) {
      const sigmoid = tf.sigmoid(gate);
      return { value: tf.mul(gate, sigmoid), kept: [sigmoid] };
    },
    // silu'(g) = s + g s (1 - s), with s = sigmoid(g).
    derivative: (gate, [s]) => tf.mul(s, tf.add(1, tf.mul(gate, tf.sub(1, s)))),
  },
  gelu_tanh: {
    // gelu(g) ~ g/2 (1 + tanh(u)), u = sqrt(2/pi) (g + 0.044715 g^3): PyTorch's gelu(approximate='tanh').
    forward(gate) {
      const u = tf.mul(tf.add(gate, tf.mul(GELU_CUBIC, tf.pow(gate, 3))), SQRT_2_OVER_PI);
      const t = tf.tanh(u);
      return { value: tf.mul(tf.mul(gate, 0.5), tf.add(1, t)), kept: [t] };
    },
    // gelu'(g) = (1 + t)/2 + g/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 g^2).
    derivative: (gate, [t]) =>
      tf.add(
        tf.mul(0.5, tf.add(1, t)),
        tf.mul(tf.mul(tf.mul(gate, 0.5 * SQRT_2_OVER_PI), tf.sub(1, tf.square(t))), tf.add(1, tf.mul(3 * GELU_CUBIC, tf.square(gate)))),
      ),
  },
};

/**
 * a(gate) * up for [..., 2F] holding gate and up side by side -> [..., F]. The gradient is written
 * out so its [..., F] intermediates are freed when it returns, not at the end of the backward pass.
 */
function gatedActivation(gateUp: tf.Tensor, activation: Gate): tf.Tensor {
  const activate: WrittenGradient = (...args) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const [gate, up] = tf.split(x, 2, -1);
    const { value, kept } = activation.forward(gate);
    save([gate, up, value, ...kept]);
    return {
      value: tf.mul(value, up),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [g, u, a, ...k] = saved;
          const dGate = tf.mul(tf.mul(dy, u), activation.derivative(g, k));
          return [tf.concat([dGate, tf.mul(dy, a)], -1)];
        }),
    };
  };
  return withWrittenGradient(activate, [gateUp]);
}

/**
 * A pre-norm decoder block: x + attn(norm(x)), then + mlp(norm(.)). With sandwich norms (Gemma 2/3) each
 * sublayer's output is normed too before it is added.
 */
export function decoderBlock(
  x: tf.Tensor3D,
  layer: number,
  config: ModelConfig,
  param: ParamLookup,
  project: Projection,
  inputs: AttentionInputs,
): tf.Tensor3D {
  const prefix = `model.layers.${layer}`;
  const norm = (input: tf.Tensor, name: string) => configuredRmsNorm(input, `${prefix}.${name}.weight`, config, param) as tf.Tensor3D;
  const attended = attention(norm(x, 'input_layernorm'), layer, config, param, project, inputs);
  const h = tf.add(x, config.sandwichNorms ? norm(attended, 'post_attention_layernorm') : attended) as tf.Tensor3D;
  const fed = mlp(norm(h, config.sandwichNorms ? 'pre_feedforward_layernorm' : 'post_attention_layernorm'), layer, config, project);
  return tf.add(h, config.sandwichNorms ? norm(fed, 'post_feedforward_layernorm') : fed) as tf.Tensor3D;
}
