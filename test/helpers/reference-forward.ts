/**
 * An independent float64 forward pass of a Llama-family model (Llama 3 rope scaling, Qwen2 q/k/v biases,
 * GQA, tied or untied head) written as plain loops from Hugging Face's modeling_llama.py and
 * modeling_rope_utils.py, sharing no code with src/model: the reference that streamed and resident
 * scoring are both checked against.
 */
import type { ModelConfig } from '../../src/model/config.ts';

export type WeightReader = (name: string) => Promise<Float32Array>;

/** log P(ids[i] | ids[..i]) for i >= 1, in float64. */
export async function referenceLogprobs(config: ModelConfig, read: WeightReader, ids: number[]): Promise<number[]> {
  const { hiddenSize: D, numLayers, vocabSize: V } = config;
  const T = ids.length;
  const embed = await read('model.embed_tokens.weight');
  let x: Float64Array[] = ids.map((id) => Float64Array.from(embed.subarray(id * D, (id + 1) * D)));
  const { cos, sin } = rotary(config, T);
  for (let layer = 0; layer < numLayers; layer++) x = await block(config, read, layer, x, cos, sin);
  const normed = x.map(async (row) => rmsNorm(row, await read('model.norm.weight'), config.rmsNormEps));
  const hidden = await Promise.all(normed);
  const head = config.tieWordEmbeddings ? embed : await read('lm_head.weight'); // [V, D]
  const result: number[] = [];
  for (let t = 0; t < T - 1; t++) {
    const logits = new Float64Array(V);
    for (let v = 0; v < V; v++) logits[v] = dot(hidden[t], head, v * D, D);
    let max = -Infinity;
    for (const l of logits) max = Math.max(max, l);
    let sum = 0;
    for (const l of logits) sum += Math.exp(l - max);
    result.push(logits[ids[t + 1]] - max - Math.log(sum));
  }
  return result;
}

async function block(config: ModelConfig, read: WeightReader, layer: number, x: Float64Array[], cos: number[][], sin: number[][]): Promise<Float64Array[]> {
  const { numHeads: H, numKvHeads: KVH, headDim: hd, rmsNormEps: eps } = config;
  const p = `model.layers.${layer}`;
  const bias = async (name: string) => (config.attentionBias ? read(`${p}.self_attn.${name}.bias`) : null);
  const n1 = await read(`${p}.input_layernorm.weight`);
  const attnIn = x.map((row) => rmsNorm(row, n1, eps));
  const q = linear(attnIn, await read(`${p}.self_attn.q_proj.weight`), await bias('q_proj'));
  const k = linear(attnIn, await read(`${p}.self_attn.k_proj.weight`), await bias('k_proj'));
  const v = linear(attnIn, await read(`${p}.self_attn.v_proj.weight`), await bias('v_proj'));
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
        return d / Math.sqrt(hd);
      });
      const max = Math.max(...scores);
      const weights = scores.map((s) => Math.exp(s - max));
      const total = weights.reduce((a, b) => a + b, 0);
      for (let j = 0; j < scores.length; j++) for (let i = 0; i < hd; i++) context[t][h * hd + i] += (weights[j] / total) * v[first + j][kv + i];
    }
  }
  const attnOut = linear(context, await read(`${p}.self_attn.o_proj.weight`), null);
  const h1 = x.map((row, t) => row.map((value, i) => value + attnOut[t][i]));
  const n2 = await read(`${p}.post_attention_layernorm.weight`);
  const mlpIn = h1.map((row) => rmsNorm(row, n2, eps));
  const gate = linear(mlpIn, await read(`${p}.mlp.gate_proj.weight`), null);
  const up = linear(mlpIn, await read(`${p}.mlp.up_proj.weight`), null);
  const act = gate.map((row, t) => row.map((g, i) => (g / (1 + Math.exp(-g))) * up[t][i]));
  const down = linear(act, await read(`${p}.mlp.down_proj.weight`), null);
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

function rmsNorm(row: Float64Array, weight: Float32Array, eps: number): Float64Array {
  let meanSquare = 0;
  for (const v of row) meanSquare += v * v;
  const scale = 1 / Math.sqrt(meanSquare / row.length + eps);
  return row.map((v, i) => v * scale * weight[i]);
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
