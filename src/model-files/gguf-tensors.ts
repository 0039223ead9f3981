/**
 * Where each Hugging Face parameter (src/model/parameters.ts) lives in a GGUF file: tensor names from gguf-py
 * `constants.py` (MODEL_TENSOR names) and `tensor_mapping.py`, shapes in row-major (PyTorch) order.
 *
 * Two layouts differ from Hugging Face's:
 * - `llama` q/k rows are interleaved per head. convert_hf_to_gguf.py LlamaModel.permute reshapes a weight to
 *   [heads, 2, headDim/2, cols] and swaps the middle axes, so HF row `h*hd + half*hd/2 + i` becomes GGUF row
 *   `h*hd + 2i + half`: llama.cpp's rope rotates adjacent pairs, HF's rotate_half the two halves of a head.
 *   k uses the kv head count. qwen2, qwen3 and phi3 files keep the HF order (qwen3's q/k norm weights are per
 *   in-head position, so they too stay as they are).
 * - `phi3` fuses attention into `attn_qkv` (rows q, then k, then v) and the MLP's gate and up into `ffn_up`
 *   (rows gate, then up: llama.cpp's swiglu applies silu to the first half).
 * And Gemma's norms are stored as 1 + w (convert_hf_to_gguf.py GemmaModel.modify_tensors: llama.cpp multiplies
 * by the stored weight), its sandwich norms as post_attention_norm / ffn_norm / post_ffw_norm.
 */
import type { ModelConfig } from '../model/config.ts';
import { parameterSpecs } from '../model/parameters.ts';
import type { SupportedGgufArchitecture } from './gguf-model-config.ts';
import type { HostTensor } from '../formats/safetensors.ts';

/** One GGUF tensor the model needs, and the part of it one parameter takes. */
export interface TensorSource {
  /** The GGUF tensor holding the values. */
  gguf: string;
  /** Its whole shape, as the config implies, in row-major order. */
  shape: number[];
  /** The rows that form this parameter (phi3's fused tensors); all of them when absent. */
  rows?: [start: number, end: number];
  /** Rows interleaved per head (llama q/k) over this many heads. */
  interleavedHeads?: number;
  /** Added to every value in the file (Gemma's norms: 1); 0 when absent. */
  storedOffset?: number;
}

const TOP_LEVEL: Record<string, string> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};

const IN_BLOCK: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'self_attn.q_norm.weight': 'attn_q_norm.weight',
  'self_attn.k_norm.weight': 'attn_k_norm.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};

/** The tensor llama.cpp reads Llama 3 rope scaling from (one for all layers). */
export const ROPE_FREQS_TENSOR = 'rope_freqs.weight';

/** Gemma 2/3's norms around each sublayer: post_attention_layernorm norms the attention's output there. */
const IN_SANDWICH_BLOCK: Record<string, string> = {
  ...IN_BLOCK,
  'post_attention_layernorm.weight': 'post_attention_norm.weight',
  'pre_feedforward_layernorm.weight': 'ffn_norm.weight',
  'post_feedforward_layernorm.weight': 'post_ffw_norm.weight',
};

/** The GGUF name of a Hugging Face parameter name, undefined for a parameter this module has no name for. */
export function ggufTensorName(hfName: string, config: Pick<ModelConfig, 'sandwichNorms'>): string | undefined {
  const topLevel = TOP_LEVEL[hfName];
  if (topLevel) return topLevel;
  const match = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  const inBlock = match && (config.sandwichNorms ? IN_SANDWICH_BLOCK : IN_BLOCK)[match[2]];
  return inBlock ? `blk.${match[1]}.${inBlock}` : undefined;
}

/** What the file adds to a parameter's values: 1 for Gemma's norms, 0 otherwise. */
function storedOffset(hfName: string, config: ModelConfig): number {
  return /norm\.weight$/.test(hfName) ? config.normWeightOffset : 0;
}

function knownGgufName(hfName: string, config: ModelConfig): string {
  const name = ggufTensorName(hfName, config);
  if (name === undefined) throw new RangeError(`no GGUF name is known for parameter '${hfName}'`);
  return name;
}

/** Per parameter of `config` (in parameterSpecs order), the GGUF tensor it is read from. */
export function tensorSources(config: ModelConfig, arch: SupportedGgufArchitecture, fusedQkv: boolean): Map<string, TensorSource> {
  const sources = new Map<string, TensorSource>();
  for (const spec of parameterSpecs(config)) {
    const gguf = knownGgufName(spec.name, config);
    const fused = arch === 'phi3' ? phi3FusedSource(gguf, config, fusedQkv) : undefined;
    sources.set(spec.name, fused ?? { gguf, shape: spec.hfShape, interleavedHeads: interleavedHeads(gguf, config, arch), storedOffset: storedOffset(spec.name, config) });
  }
  return sources;
}

/** Where phi3 keeps q, k, v (in attn_qkv, when the file fuses them) and gate, up (always in ffn_up). */
function phi3FusedSource(gguf: string, config: ModelConfig, fusedQkv: boolean): TensorSource | undefined {
  const { hiddenSize: d, intermediateSize: f, numHeads, numKvHeads, headDim } = config;
  const [q, kv] = [numHeads * headDim, numKvHeads * headDim];
  const [, block, part] = /^blk\.(\d+)\.(\w+)\.weight$/.exec(gguf) ?? [];
  const inQkv: Record<string, [number, number]> = { attn_q: [0, q], attn_k: [q, q + kv], attn_v: [q + kv, q + 2 * kv] };
  if (fusedQkv && inQkv[part]) return { gguf: `blk.${block}.attn_qkv.weight`, shape: [q + 2 * kv, d], rows: inQkv[part] };
  const inUp: Record<string, [number, number]> = { ffn_gate: [0, f], ffn_up: [f, 2 * f] };
  if (inUp[part]) return { gguf: `blk.${block}.ffn_up.weight`, shape: [2 * f, d], rows: inUp[part] };
  return undefined;
}

/** The heads over which llama interleaves a tensor's rows (q and k, weights and biases); undefined for others. */
export function interleavedHeads(ggufName: string, config: ModelConfig, arch: SupportedGgufArchitecture): number | undefined {
  if (arch !== 'llama') return undefined;
  if (/\.attn_q\.(weight|bias)$/.test(ggufName)) return config.numHeads;
  if (/\.attn_k\.(weight|bias)$/.test(ggufName)) return config.numKvHeads;
  return undefined;
}

/** A parameter in HF layout as the GGUF tensor `arch` stores it (not fused: this project writes none). */
export function toGgufLayout(tensor: HostTensor, config: ModelConfig, arch: SupportedGgufArchitecture): HostTensor {
  const name = knownGgufName(tensor.name, config);
  const heads = interleavedHeads(name, config, arch);
  const cols = tensor.shape.length > 1 ? tensor.shape[1] : 1;
  const offset = storedOffset(tensor.name, config);
  const data = offset === 0 ? tensor.data : tensor.data.map((v) => v + offset);
  return { name, shape: tensor.shape, data: heads ? interleaveHeadRows(data, cols, heads) : data };
}

/** The HF layout of one parameter, from the whole GGUF tensor `data` it lives in. */
export function fromGgufLayout(data: Float32Array, source: TensorSource): Float32Array {
  const cols = source.shape.length > 1 ? source.shape[1] : 1;
  const [start, end] = source.rows ?? [0, source.shape[0]];
  const rows = data.slice(start * cols, end * cols);
  const offset = source.storedOffset ?? 0;
  if (offset !== 0) rows.forEach((v, i) => (rows[i] = v - offset));
  return source.interleavedHeads ? deinterleaveHeadRows(rows, cols, source.interleavedHeads) : rows;
}

/** HF -> GGUF row order of llama's q/k (weights [rows, cols], or biases with cols 1). */
export function interleaveHeadRows(data: Float32Array, cols: number, heads: number): Float32Array {
  return moveHeadRows(data, cols, heads, (half, i, headDim) => [half * (headDim / 2) + i, 2 * i + half]);
}

/** GGUF -> HF row order of llama's q/k: the inverse of interleaveHeadRows. */
export function deinterleaveHeadRows(data: Float32Array, cols: number, heads: number): Float32Array {
  return moveHeadRows(data, cols, heads, (half, i, headDim) => [2 * i + half, half * (headDim / 2) + i]);
}

/** The GGUF row each HF row of llama's q/k comes from, for `rows` rows over `heads` heads. */
export function deinterleavedRowOrder(rows: number, heads: number): Int32Array {
  const headDim = rows / heads;
  const order = new Int32Array(rows);
  for (let head = 0; head < heads; head++) {
    for (let half = 0; half < 2; half++) {
      for (let i = 0; i < headDim / 2; i++) order[head * headDim + half * (headDim / 2) + i] = head * headDim + 2 * i + half;
    }
  }
  return order;
}

/** Copies each row of each head from one in-head position to another, given as [from, to] for (half, i). */
function moveHeadRows(
  data: Float32Array,
  cols: number,
  heads: number,
  move: (half: number, i: number, headDim: number) => [from: number, to: number],
): Float32Array {
  const headDim = data.length / cols / heads;
  const out = new Float32Array(data.length);
  for (let head = 0; head < heads; head++) {
    for (let half = 0; half < 2; half++) {
      for (let i = 0; i < headDim / 2; i++) {
        const [from, to] = move(half, i, headDim).map((row) => (head * headDim + row) * cols);
        out.set(data.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}
