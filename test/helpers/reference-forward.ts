/**
 * An independent float64 forward pass of a Llama-family model (Llama 3 rope scaling, Qwen2 q/k/v biases,
 * Qwen3 q/k norms, GQA, tied or untied head, sliding windows) and of Gemma 1/2/3 (GeGLU, (1 + w) and sandwich
 * norms, scaled embeddings, query_pre_attn_scalar, soft-capping, local RoPE bases) written as plain loops from
 * Hugging Face's modeling_llama.py, modeling_gemma*.py and modeling_rope_utils.py, sharing no code with
 * src/model: the reference that streamed and resident scoring are both checked against.
 */
import type { ModelConfig } from '../../src/model/config.ts';

export type WeightReader = (name: string) => Promise<Float32Array>;

/** log P(ids[i] | ids[..i]) for i >= 1, in float64. */
export async function referenceLogprobs(config: ModelConfig, read: WeightReader, ids: number[]): Promise<number[]> {
  const { hiddenSize: D, numLayers, vocabSize: V } = config;
  const T = ids.length;
  const embed = await read('model.embed_tokens.weight');
  let x: Float64Array[] = ids.map((id) => Float64Array.from(embed.subarray(id * D, (id + 1) * D), (v) => v * config.embeddingScale));
  const global = rotary(config, T);
  const local = config.localRopeTheta === null ? global : rotary({ ...config, ropeTheta: config.localRopeTheta, ropeScaling: null }, T);
  for (let layer = 0; layer < numLayers; layer++) {
    const { cos, sin } = config.layerTypes[layer] === 'sliding' ? local : global;
    x = await block(config, read, layer, x, cos, sin);
  }
  const normed = x.map(async (row) => rmsNorm(row, await read('model.norm.weight'), config));
  const hidden = await Promise.all(normed);
  const head = config.tieWordEmbeddings ? embed : await read('lm_head.weight'); // [V, D]
  const result: number[] = [];
  for (let t = 0; t < T - 1; t++) {
    const logits = new Float64Array(V);
    for (let v = 0; v < V; v++) logits[v] = cap(dot(hidden[t], head, v * D, D), config.finalLogitSoftcap);
    let max = -Infinity;
    for (const l of logits) max = Math.max(max, l);
    let sum = 0;
    for (const l of logits) sum += Math.exp(l - max);
    result.push(logits[ids[t + 1]] - max - Math.log(sum));
  }
  return result;
}

async function block(config: ModelConfig, read: WeightReader, layer: number, x: Float64Array[], cos: number[][], sin: number[][]): Promise<Float64Array[]> {
  const { numHeads: H, numKvHeads: KVH, headDim: hd } = config;
  const p = `model.layers.${layer}`;
  const bias = async (name: string) => (config.attentionBias ? read(`${p}.self_attn.${name}.bias`) : null);
  const norm = async (rows: Float64Array[], name: string) => {
    const weight = await read(`${p}.${name}.weight`);
    return rows.map((row) => rmsNorm(row, weight, config));
  };
  const attnIn = await norm(x, 'input_layernorm');
  const q = linear(attnIn, await read(`${p}.self_attn.q_proj.weight`), await bias('q_proj'));
  const k = linear(attnIn, await read(`${p}.self_attn.k_proj.weight`), await bias('k_proj'));
  const v = linear(attnIn, await read(`${p}.self_attn.v_proj.weight`), await bias('v_proj'));
  if (config.qkNorm) {
    const [qNorm, kNorm] = [await read(`${p}.self_attn.q_norm.weight`), await read(`${p}.self_attn.k_norm.weight`)];
    const perHead = (row: Float64Array, weight: Float32Array) => {
      for (let at = 0; at < row.length; at += hd) row.set(rmsNorm(row.subarray(at, at + hd), weight, config), at);
    };
    q.forEach((row) => perHead(row, qNorm));
    k.forEach((row) => perHead(row, kNorm));
  }
  for (let t = 0; t < x.length; t++) {
    for (let h = 0; h < H; h++) rotate(q[t], h * hd, hd, cos[t], sin[t]);
    for (let h = 0; h < KVH; h++) rotate(k[t], h * hd, hd, cos[t], sin[t]);
  }
  const context = x.map(() => new Float64Array(H * hd));
  const windowed = config.layerTypes[layer] === 'sliding';
  for (let h = 0; h < H; h++) {
    const kv = Math.floor(h / (H / KVH)) * hd;
    for (let t = 0; t < x.length; t++) {
      // modeling_mistral's sliding window: key s is seen when 0 <= t - s < window.
      const first = windowed ? Math.max(0, t - config.slidingWindow! + 1) : 0;
      const scores = Array.from({ length: t + 1 - first }, (_, j) => {
        let d = 0;
        for (let i = 0; i < hd; i++) d += q[t][h * hd + i] * k[first + j][kv + i];
        return cap(d / Math.sqrt(config.queryPreAttnScalar), config.attnLogitSoftcap);
      });
      const max = Math.max(...scores);
      const weights = scores.map((s) => Math.exp(s - max));
      const total = weights.reduce((a, b) => a + b, 0);
      for (let j = 0; j < scores.length; j++) for (let i = 0; i < hd; i++) context[t][h * hd + i] += (weights[j] / total) * v[first + j][kv + i];
    }
  }
  let attnOut = linear(context, await read(`${p}.self_attn.o_proj.weight`), null);
  if (config.sandwichNorms) attnOut = await norm(attnOut, 'post_attention_layernorm');
  const h1 = x.map((row, t) => row.map((value, i) => value + attnOut[t][i]));
  const mlpIn = await norm(h1, config.sandwichNorms ? 'pre_feedforward_layernorm' : 'post_attention_layernorm');
  const gate = linear(mlpIn, await read(`${p}.mlp.gate_proj.weight`), null);
  const up = linear(mlpIn, await read(`${p}.mlp.up_proj.weight`), null);
  const activation = config.hiddenActivation === 'silu' ? (g: number) => g / (1 + Math.exp(-g)) : geluTanh;
  const act = gate.map((row, t) => row.map((g, i) => activation(g) * up[t][i]));
  let down = linear(act, await read(`${p}.mlp.down_proj.weight`), null);
  if (config.sandwichNorms) down = await norm(down, 'post_feedforward_layernorm');
  return h1.map((row, t) => row.map((value, i) => value + down[t][i]));
}

/** rows [T, in] times a weight stored [out, in], plus bias. */
function linear(rows: Float64Array[], weight: Float32Array, bias: Float32Array | null): Float64Array[] {
  const inFeatures = rows[0].length;
  const out = weight.length / inFeatures;
  return rows.map((row) => {
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) y[o] = dot(row, weight, o * inFeatures, inFeatures) + (bias ? bias[o] : 0);
    return y;
  });
}

function dot(row: Float64Array, matrix: Float32Array, offset: number, length: number): number {
  let sum = 0;
  for (let i = 0; i < length; i++) sum += row[i] * matrix[offset + i];
  return sum;
}

/** RMSNorm times weight, or times (1 + weight) in Gemma. */
function rmsNorm(row: Float64Array, weight: Float32Array, { rmsNormEps, normWeightOffset }: ModelConfig): Float64Array {
  let meanSquare = 0;
  for (const v of row) meanSquare += v * v;
  const scale = 1 / Math.sqrt(meanSquare / row.length + rmsNormEps);
  return row.map((v, i) => v * scale * (normWeightOffset + weight[i]));
}

/** PyTorch's gelu(approximate='tanh'). */
function geluTanh(g: number): number {
  return 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g ** 3)));
}

/** Gemma 2's soft-capping, c * tanh(x / c); x without a cap. */
function cap(x: number, c: number | null): number {
  return c === null ? x : c * Math.tanh(x / c);
}

/**
 * rotate_half convention over the first `cos.length * 2` dimensions of a head (partial rotary: Phi's
 * q_rot / q_pass): the first and second halves of those are the pairs; the rest pass unchanged.
 */
function rotate(row: Float64Array, start: number, _hd: number, cos: number[], sin: number[]): void {
  const half = cos.length;
  for (let i = 0; i < half; i++) {
    const a = row[start + i];
    const b = row[start + half + i];
    row[start + i] = a * cos[i] - b * sin[i];
    row[start + half + i] = b * cos[i] + a * sin[i];
  }
}

/**
 * Per position, cos and sin of each frequency (half the rotary dimensions), with Llama 3's frequency
 * scaling, or longrope's (modeling_rope_utils: short factors while T fits the original context, long ones
 * beyond, cos and sin times the attention factor).
 */
function rotary(config: ModelConfig, T: number): { cos: number[][]; sin: number[][] } {
  const dim = config.rotaryDim;
  let inv = Array.from({ length: dim / 2 }, (_, i) => 1 / config.ropeTheta ** ((2 * i) / dim));
  let mscale = 1;
  if (config.longRope) {
    const { shortFactor, longFactor, originalMaxPositionEmbeddings, attentionFactor } = config.longRope;
    const ext = T > originalMaxPositionEmbeddings ? longFactor : shortFactor;
    inv = inv.map((f, i) => 1 / (ext[i] * (1 / f)));
    mscale = attentionFactor;
  }
  const scaling = config.ropeScaling;
  if (scaling?.ropeType === 'linear') inv = inv.map((f) => f / scaling.factor);
  if (scaling?.ropeType === 'llama3') {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: old } = scaling;
    const lowWavelen = old / lowFreqFactor;
    const highWavelen = old / highFreqFactor;
    inv = inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / factor;
      const smooth = (old / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      return (1 - smooth) * (f / factor) + smooth * f;
    });
  }
  const angles = Array.from({ length: T }, (_, t) => inv.map((f) => t * f));
  return { cos: angles.map((row) => row.map((a) => Math.cos(a) * mscale)), sin: angles.map((row) => row.map((a) => Math.sin(a) * mscale)) };
}
