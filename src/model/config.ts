import { formatSize } from '../util/format-size.ts';
/**
 * Architecture of a decoder of the Llama lineage. One config covers Llama 2/3, SmolLM, TinyLlama, Mistral,
 * Qwen2/3, Phi-3 and Gemma 1/2/3; the field names follow Hugging Face's config.json in camelCase.
 */
export type RopeScaling = Llama3RopeScaling | LinearRopeScaling;

/** Llama 3.x frequency-dependent scaling. */
export interface Llama3RopeScaling {
  ropeType: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** Every frequency divided by `factor` (positions interpolated): Gemma 3's global layers. */
export interface LinearRopeScaling {
  ropeType: 'linear';
  factor: number;
}

/** How a layer attends: to the whole context, or to a sliding window of it. */
export type LayerAttention = 'full' | 'sliding';

/**
 * Phi-3.5/Phi-4-mini's longrope: each rotary frequency divided by its short factor while the sequence fits
 * `originalMaxPositionEmbeddings`, by its long factor beyond, and cos/sin scaled by `attentionFactor`
 * (transformers' `_compute_longrope_parameters`).
 */
export interface LongRope {
  shortFactor: number[];
  longFactor: number[];
  originalMaxPositionEmbeddings: number;
  attentionFactor: number;
}

export interface ModelConfig {
  /** Hugging Face `model_type`, kept for export: `llama`, `qwen2`, `mistral`. */
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  longRope: LongRope | null;
  /** Dimensions of each head that rotate (head_dim x partial_rotary_factor; Phi-4-mini: 3/4); the rest pass. */
  rotaryDim: number;
  maxPositionEmbeddings: number;
  /** q/k/v projections carry a bias (Qwen2). */
  attentionBias: boolean;
  /** Per-head RMSNorm of queries and keys before RoPE (Qwen3). */
  qkNorm: boolean;
  tieWordEmbeddings: boolean;
  /**
   * Sliding-window attention: a query sees itself and the `slidingWindow - 1` positions before it, in the
   * layers `layerTypes` marks 'sliding' (Mistral, Phi-3: all; Qwen2 with use_sliding_window: from
   * max_window_layers; Gemma 2: every other one; Gemma 3: five of six). null: every layer sees the whole context.
   */
  slidingWindow: number | null;
  /** One entry per layer; all 'full' without a window. */
  layerTypes: readonly LayerAttention[];
  /** Gemma 3: the RoPE base of sliding layers, which ignore ropeScaling; null: every layer uses ropeTheta. */
  localRopeTheta: number | null;
  /** The MLP's gate: SwiGLU's silu, or GeGLU's tanh-approximated gelu (Gemma's gelu_pytorch_tanh). */
  hiddenActivation: 'silu' | 'gelu_tanh';
  /** RMSNorm multiplies by (normWeightOffset + weight): 1 in Gemma, whose stored norm weights sit around 0. */
  normWeightOffset: 0 | 1;
  /** Token embeddings are multiplied by this before the first layer (Gemma: sqrt(hiddenSize)). */
  embeddingScale: number;
  /**
   * Gemma 2/3: each sublayer's output is normed before it joins the residual stream (post_attention_layernorm,
   * post_feedforward_layernorm), and the MLP reads pre_feedforward_layernorm. Otherwise post_attention_layernorm
   * is the MLP's input norm.
   */
  sandwichNorms: boolean;
  /** Attention scores are q.k / sqrt(queryPreAttnScalar): headDim, unless Gemma's query_pre_attn_scalar says otherwise. */
  queryPreAttnScalar: number;
  /** Gemma 2: attention scores and final logits pass through cap * tanh(x / cap); null: not capped. */
  attnLogitSoftcap: number | null;
  finalLogitSoftcap: number | null;
  bosTokenId: number | null;
  eosTokenId: number | null;
  /**
   * Every id that ends a generation: all the eos ids config.json lists (Llama 3.x: <|end_of_text|>,
   * <|eom_id|>, <|eot_id|>), generation_config.json's and the tokenizer's. `eosTokenId` is the first.
   */
  stopTokenIds: number[];
}

export type ModelConfigInput = Partial<ModelConfig> &
  Pick<ModelConfig, 'vocabSize' | 'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads'>;

/** A config cut to its first `numLayers` layers, every per-layer setting with it. */
export function withLayers(config: ModelConfig, numLayers: number): ModelConfig {
  return resolveModelConfig({ ...config, numLayers, layerTypes: config.layerTypes.slice(0, numLayers) });
}

/** More layers than any published decoder has by two orders of magnitude: a config beyond it is broken. */
const MAX_LAYERS = 10_000;

/** Fills defaults and checks the invariants every module relies on; errors name the field. */
export function resolveModelConfig(input: ModelConfigInput): ModelConfig {
  if (!(input.numLayers <= MAX_LAYERS)) throw new RangeError(`model config: numLayers must be at most ${MAX_LAYERS}, got ${input.numLayers}`);
  const numKvHeads = input.numKvHeads ?? input.numHeads;
  const headDim = input.headDim ?? input.hiddenSize / input.numHeads;
  const slidingWindow = input.slidingWindow ?? null;
  const config: ModelConfig = {
    modelType: input.modelType ?? 'llama',
    vocabSize: input.vocabSize,
    hiddenSize: input.hiddenSize,
    intermediateSize: input.intermediateSize,
    numLayers: input.numLayers,
    numHeads: input.numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: input.rmsNormEps ?? 1e-5,
    ropeTheta: input.ropeTheta ?? 10000,
    ropeScaling: input.ropeScaling ?? null,
    longRope: input.longRope ?? null,
    rotaryDim: input.rotaryDim ?? headDim,
    maxPositionEmbeddings: input.maxPositionEmbeddings ?? 2048,
    attentionBias: input.attentionBias ?? false,
    qkNorm: input.qkNorm ?? false,
    tieWordEmbeddings: input.tieWordEmbeddings ?? false,
    slidingWindow,
    layerTypes: input.layerTypes ?? Array.from({ length: input.numLayers }, () => (slidingWindow === null ? 'full' : 'sliding')),
    localRopeTheta: input.localRopeTheta ?? null,
    hiddenActivation: input.hiddenActivation ?? 'silu',
    normWeightOffset: input.normWeightOffset ?? 0,
    embeddingScale: input.embeddingScale ?? 1,
    sandwichNorms: input.sandwichNorms ?? false,
    queryPreAttnScalar: input.queryPreAttnScalar ?? headDim,
    attnLogitSoftcap: input.attnLogitSoftcap ?? null,
    finalLogitSoftcap: input.finalLogitSoftcap ?? null,
    bosTokenId: input.bosTokenId ?? null,
    eosTokenId: input.eosTokenId ?? null,
    stopTokenIds: [...new Set([...(input.eosTokenId == null ? [] : [input.eosTokenId]), ...(input.stopTokenIds ?? [])])],
  };
  for (const id of config.stopTokenIds) {
    if (!Number.isInteger(id) || id < 0) throw new RangeError(`model config: stopTokenIds must be token ids, got ${id}`);
  }
  for (const key of ['vocabSize', 'hiddenSize', 'intermediateSize', 'numLayers', 'numHeads', 'numKvHeads'] as const) {
    if (!Number.isInteger(config[key]) || config[key] <= 0) {
      throw new RangeError(`model config: ${key} must be a positive integer, got ${config[key]}`);
    }
  }
  if (!Number.isInteger(config.headDim) || config.headDim <= 0 || config.headDim % 2 !== 0) {
    throw new RangeError(
      `model config: headDim must be a positive even integer (hiddenSize / numHeads when not given), got ${config.headDim}`,
    );
  }
  if (!Number.isInteger(config.rotaryDim) || config.rotaryDim <= 0 || config.rotaryDim % 2 !== 0 || config.rotaryDim > config.headDim) {
    throw new RangeError(`model config: rotaryDim must be an even integer in (0, headDim ${config.headDim}], got ${config.rotaryDim}`);
  }
  if (config.longRope && (config.longRope.shortFactor.length !== config.rotaryDim / 2 || config.longRope.longFactor.length !== config.rotaryDim / 2)) {
    throw new RangeError(`model config: longrope short and long factors need ${config.rotaryDim / 2} values each (rotaryDim / 2), got ${config.longRope.shortFactor.length} and ${config.longRope.longFactor.length}`);
  }
  if (config.slidingWindow !== null && !(Number.isInteger(config.slidingWindow) && config.slidingWindow > 0)) {
    throw new RangeError(`model config: slidingWindow must be a positive integer or null, got ${config.slidingWindow}`);
  }
  if (config.layerTypes.length !== config.numLayers || !config.layerTypes.every((type) => type === 'full' || type === 'sliding')) {
    throw new RangeError(`model config: layerTypes must give 'full' or 'sliding' for each of the ${config.numLayers} layers, got [${config.layerTypes}]`);
  }
  if (config.slidingWindow === null && config.layerTypes.includes('sliding')) {
    throw new RangeError('model config: layerTypes has sliding layers, but slidingWindow is null');
  }
  for (const key of ['embeddingScale', 'queryPreAttnScalar', 'attnLogitSoftcap', 'finalLogitSoftcap', 'localRopeTheta'] as const) {
    const value = config[key];
    if (value !== null && !(Number.isFinite(value) && value > 0)) throw new RangeError(`model config: ${key} must be a positive number, got ${value}`);
  }
  if (config.numHeads % config.numKvHeads !== 0) {
    throw new RangeError(
      `model config: numHeads (${config.numHeads}) must be a multiple of numKvHeads (${config.numKvHeads})`,
    );
  }
  return config;
}

/** Parameter count, computed from the config alone (matches the weights the model creates). */
export function countParameters(config: ModelConfig): number {
  const { hiddenSize: d, intermediateSize: f, numLayers, numHeads, numKvHeads, headDim, vocabSize } = config;
  const qDim = numHeads * headDim;
  const kvDim = numKvHeads * headDim;
  const attention =
    d * qDim + 2 * d * kvDim + qDim * d + (config.attentionBias ? qDim + 2 * kvDim : 0) + (config.qkNorm ? 2 * headDim : 0);
  const mlp = 3 * d * f;
  const norms = (config.sandwichNorms ? 4 : 2) * d;
  const embeddings = vocabSize * d * (config.tieWordEmbeddings ? 1 : 2);
  return numLayers * (attention + mlp + norms) + d + embeddings;
}

/**
 * Every layer sliding but every `period`-th (Gemma 2: period 2, Gemma 3: 6), as transformers' sliding_window_pattern
 * and llama.cpp's set_swa_pattern lay them out.
 */
export function periodicLayerTypes(numLayers: number, period: number): LayerAttention[] {
  return Array.from({ length: numLayers }, (_, layer) => ((layer + 1) % period === 0 ? 'full' : 'sliding'));
}

/** Layer `layer`'s sliding window, or null when it sees the whole context. */
export function layerWindow(config: ModelConfig, layer: number): number | null {
  return config.layerTypes[layer] === 'sliding' ? config.slidingWindow : null;
}

export interface HeldWeights {
  /** Tensor names and shapes as the file lists them. */
  tensors: readonly { name: string; shape: readonly number[] }[];
  /** How a layer's tensors are named: `model.layers.` (Hugging Face), `blk.` (GGUF). */
  layerPrefix: string;
}

/**
 * Why a config names more layers than its weights hold (a config with a huge count would otherwise build
 * layers, or plan memory, for weights that do not exist); null when it does not.
 */
export function layerCountMismatch(config: ModelConfig, weights: HeldWeights, layersKey: string): string | null {
  const prefix = weights.layerPrefix;
  let layers = 0;
  for (const { name } of weights.tensors) {
    if (!name.startsWith(prefix)) continue;
    const index = Number.parseInt(name.slice(prefix.length), 10);
    if (Number.isInteger(index)) layers = Math.max(layers, index + 1);
  }
  if (config.numLayers <= layers) return null;
  return `${layersKey} is ${config.numLayers}, but the weights hold ${layers} layer(s)${layers > 0 ? ` (${prefix}0 .. ${prefix}${layers - 1})` : ''}`;
}

/**
 * Why a config describes more parameters than all its weights together (a huge hidden, intermediate or
 * vocabulary size), for loaders that would allocate before checking each tensor's shape; null when not.
 * Tied embeddings may be stored twice and some files carry extra tensors: weights may hold more, never fewer.
 */
export function parameterCountMismatch(config: ModelConfig, weights: HeldWeights): string | null {
  const elements = weights.tensors.reduce((total, { shape }) => total + shape.reduce((product, dim) => product * dim, 1), 0);
  const parameters = countParameters(config);
  if (parameters <= elements) return null;
  return `the config describes ${parameters.toLocaleString('en')} parameters, but the weights hold ${elements.toLocaleString('en')} values: check its sizes (hidden, intermediate, vocabulary, heads)`;
}

/** One line announcing a model before its weights are read: its shape and the memory its float32 parameters take. */
export function describeModelSize(source: string, kind: string, config: ModelConfig): string {
  const parameters = countParameters(config);
  return `${source}: ${kind}, ${config.numLayers} layers, ${parameters.toLocaleString('en')} parameters: ${formatSize(parameters * 4)} as float32`;
}
