/**
 * GGUF metadata <-> ModelConfig for the architectures this project runs, with the keys and defaults llama.cpp
 * reads (src/llama-model.cpp load_hparams, src/llama-arch.cpp LLM_KV names) and convert_hf_to_gguf.py writes
 * (TextModel.set_gguf_parameters, LlamaModel, Qwen2Model, Phi3MiniModel):
 *
 *   llama   Llama 2/3, Mistral, SmolLM, TinyLlama. q/k rows interleaved per head (see gguf-tensors.ts);
 *           Llama 3 rope scaling as the `rope_freqs.weight` factors (see gguf-rope-factors.ts); optional
 *           q/k/v biases (a Qwen2 that llama.cpp's qwen2 cannot hold, see ggufArchitectureOf).
 *   qwen2   q/k/v biases, rotate-half layout as in Hugging Face files, head_dim = hidden / heads.
 *   phi3    a Llama with fused attn_qkv and ffn_up (gate then up); split on load, so it runs as `llama`.
 *   qwen3   a Llama with per-head q/k RMSNorm (attn_q_norm, attn_k_norm) before rope, HF row order, head_dim
 *           from key_length (Qwen3Model extends Qwen2Model in the converter; llama.cpp's qwen3 reads no biases
 *           and no rope_freqs).
 *   gemma, gemma2, gemma3
 *           Gemma 1/2/3 (src/models/gemma*.cpp): HF row order, norms stored as 1 + w, embeddings scaled by
 *           sqrt(hidden), the token embedding as the head. gemma2 always caps attention and final logits
 *           (defaults 50 and 30) and slides every other layer (default window 4096); gemma3 has q/k norms, caps
 *           final logits only when the key is there, slides five layers of six when a window is given, its
 *           local layers at rope.freq_base_swa (default 10000). Neither stores query_pre_attn_scalar: the
 *           query scale is 1/sqrt(head_dim), or 1/sqrt(hidden / heads) for the 27B models (by layer count).
 *
 * Anything that would make the file compute something our transformer does not is refused by name.
 */
import { periodicLayerTypes, resolveModelConfig } from '../model/config.ts';
import type { LayerAttention, ModelConfig, RopeScaling } from '../model/config.ts';
import { describeValue, FormatError } from '../formats/format-error.ts';
import { GGUF_KEY, archKey } from '../formats/gguf/constants.ts';
import type { GgufMetadata, GgufValue } from '../formats/gguf/metadata.ts';
import { ropeScalingFromFactors } from './gguf-rope-factors.ts';

export class GgufModelError extends FormatError {}

export const SUPPORTED_GGUF_ARCHITECTURES = ['llama', 'qwen2', 'phi3', 'qwen3', 'gemma', 'gemma2', 'gemma3'] as const;
export type SupportedGgufArchitecture = (typeof SUPPORTED_GGUF_ARCHITECTURES)[number];
type GemmaArchitecture = 'gemma' | 'gemma2' | 'gemma3';

/** The Hugging Face model_type of each Gemma architecture. */
const GEMMA_MODEL_TYPES: Record<GemmaArchitecture, string> = { gemma: 'gemma', gemma2: 'gemma2', gemma3: 'gemma3_text' };

/** llama.cpp's defaults where a Gemma file leaves a key out, and its sliding-layer period (set_swa_pattern). */
const GEMMA2_DEFAULTS = { attnLogitSoftcap: 50, finalLogitSoftcap: 30, slidingWindow: 4096, period: 2 };
const GEMMA3_DEFAULTS = { period: 6, localRopeTheta: 10000 };
/** The layer counts llama.cpp takes for the 27B models, whose queries are scaled by hidden / heads. */
const GEMMA_27B_LAYERS: Record<GemmaArchitecture, number | null> = { gemma: null, gemma2: 46, gemma3: 62 };

function isGemmaArchitecture(arch: string): arch is GemmaArchitecture {
  return Object.hasOwn(GEMMA_MODEL_TYPES, arch);
}

/** What would be needed to run the architectures people are most likely to try next. */
const UNSUPPORTED_HINTS: Record<string, string> = {
  gemma3n: 'Gemma 3n has per-layer embeddings and AltUp, which this model lacks',
  qwen3moe: 'Qwen3 MoE needs per-head q/k norms and mixture-of-experts layers, which this model lacks',
  phi2: 'Phi-2 uses LayerNorm, GELU and a parallel attention/MLP block',
};

/** Tensor facts the metadata alone does not give. */
export interface GgufModelFacts {
  /** The file, for error messages. */
  file: string;
  tensorNames: ReadonlySet<string>;
  /** `rope_freqs.weight` when the file has it. */
  ropeFactors: ArrayLike<number> | null;
}

/** The ModelConfig of a GGUF file, or a GgufModelError that says what it has that we cannot run. */
export function ggufModelConfig(metadata: GgufMetadata, facts: GgufModelFacts): ModelConfig {
  const keys = new ArchKeys(metadata, facts.file);
  const arch = keys.architecture();
  const { tensorNames } = facts;
  refuseUnsupportedFeatures(keys, arch, tensorNames);
  const hiddenSize = keys.integer('embedding_length');
  const numHeads = keys.uniformInteger('attention.head_count');
  const headDim = keys.optionalInteger('attention.key_length') ?? hiddenSize / numHeads;
  checkHeadDims(keys, headDim);
  const ropeTheta = keys.optionalFloat('rope.freq_base') ?? 10000;
  const qkNorm = arch === 'qwen3' || arch === 'gemma3';
  // q/k/v biases and no others (attn_output.bias is refused) is what Qwen2 adds to a Llama, whatever the file's
  // arch, except qwen3 and gemma, whose llama.cpp graphs add none (so their bias tensors are refused as unused)
  const attentionBias = arch !== 'qwen3' && !isGemmaArchitecture(arch) && tensorNames.has('blk.0.attn_q.bias');
  const numLayers = keys.integer('block_count');
  const input = {
    ...(isGemmaArchitecture(arch) ? gemmaFields(keys, arch, { hiddenSize, numHeads, headDim, numLayers }) : {}),
    modelType: isGemmaArchitecture(arch) ? GEMMA_MODEL_TYPES[arch] : arch === 'qwen3' ? 'qwen3' : attentionBias ? 'qwen2' : 'llama',
    vocabSize: keys.optionalInteger('vocab_size') ?? keys.tokenCount(),
    hiddenSize,
    intermediateSize: keys.uniformInteger('feed_forward_length'),
    numLayers,
    numHeads,
    numKvHeads: keys.optionalUniformInteger('attention.head_count_kv') ?? numHeads,
    headDim,
    rmsNormEps: keys.float('attention.layer_norm_rms_epsilon'),
    ropeTheta,
    ropeScaling: arch === 'llama' ? ropeScaling(keys, facts.ropeFactors, headDim, ropeTheta) : arch === 'gemma3' ? linearRopeScaling(keys) : null,
    maxPositionEmbeddings: keys.integer('context_length'),
    attentionBias,
    qkNorm,
    tieWordEmbeddings: !tensorNames.has('output.weight'),
    bosTokenId: keys.optionalTokenId(GGUF_KEY.TOKENIZER_BOS_ID),
    eosTokenId: keys.optionalTokenId(GGUF_KEY.TOKENIZER_EOS_ID),
    // llama.cpp ends a generation at end-of-turn and end-of-message tokens too (Llama 3's <|eot_id|>).
    stopTokenIds: [GGUF_KEY.TOKENIZER_EOT_ID, GGUF_KEY.TOKENIZER_EOM_ID].flatMap((key) => keys.optionalTokenId(key) ?? []),
  };
  try {
    return resolveModelConfig(input);
  } catch (error) {
    throw new GgufModelError(facts.file, 'INVALID_CONFIG', (error as Error).message, { cause: error });
  }
}

/**
 * The GGUF architecture a config is written as. Qwen2 keeps its own name when llama.cpp's qwen2 can hold it:
 * that one sizes q as hidden x hidden and reads no rope_freqs, while its llama reads q/k/v biases of any
 * size, so a Qwen2 with an explicit head_dim or Llama 3 rope scaling is written as a llama with biases.
 * q/k norms exist only in llama.cpp's qwen3, which has no biases and no rope scaling.
 */
export function ggufArchitectureOf(config: ModelConfig): ExportedGgufArchitecture {
  if (config.longRope !== null || config.rotaryDim !== config.headDim) {
    throw new GgufModelError('(export)', 'UNSUPPORTED', 'longrope and partial rotary embeddings are not written to GGUF here (llama.cpp keeps them in its phi3 graph, which this export does not write); export to hf or peft instead');
  }
  const gemma = (Object.keys(GEMMA_MODEL_TYPES) as GemmaArchitecture[]).find((arch) => GEMMA_MODEL_TYPES[arch] === config.modelType);
  if (gemma) return gemmaArchitecture(config, gemma);
  if (config.slidingWindow !== null) {
    // llama.cpp's llama, qwen2 and qwen3 graphs attend to the whole context: the file would score otherwise.
    throw new GgufModelError('(export)', 'UNSUPPORTED', `a ${config.slidingWindow}-token sliding window cannot be written to GGUF: llama.cpp's llama, qwen2 and qwen3 attend to the whole context; export to hf or peft instead`);
  }
  if (config.qkNorm) return qwen3Architecture(config);
  if (config.modelType === 'qwen2') {
    return config.numHeads * config.headDim === config.hiddenSize && config.ropeScaling === null ? 'qwen2' : 'llama';
  }
  if (config.modelType === 'llama' || config.modelType === 'mistral') return 'llama';
  throw new GgufModelError('(export)', 'UNSUPPORTED', `model_type '${config.modelType}' cannot be written to GGUF; supported: llama, mistral, qwen2, qwen3`);
}

export type ExportedGgufArchitecture = 'llama' | 'qwen2' | 'qwen3' | GemmaArchitecture;

/** The Gemma architecture `config` is written as, refused where llama.cpp's graph would compute something else. */
function gemmaArchitecture(config: ModelConfig, arch: GemmaArchitecture): GemmaArchitecture {
  const cannot = (what: string): never => {
    throw new GgufModelError('(export)', 'UNSUPPORTED', `${what} cannot be written to GGUF as llama.cpp's ${arch}; export to hf or peft instead`);
  };
  const expected = gemmaFields(null, arch, config);
  for (const key of ['hiddenActivation', 'normWeightOffset', 'embeddingScale', 'sandwichNorms', 'queryPreAttnScalar'] as const) {
    if (config[key] !== expected[key]) cannot(`${key} ${config[key]} (llama.cpp's ${arch} has ${expected[key]})`);
  }
  if (config.qkNorm !== (arch === 'gemma3') || config.attentionBias) cannot(`a model with${config.qkNorm ? '' : 'out'} q/k norms${config.attentionBias ? ' and attention biases' : ''}`);
  if (arch === 'gemma2' && (config.attnLogitSoftcap === null || config.finalLogitSoftcap === null)) cannot('a Gemma 2 without both soft-caps');
  if (arch !== 'gemma2' && config.attnLogitSoftcap !== null) cannot('an attention soft-cap');
  if (arch === 'gemma' && (config.finalLogitSoftcap !== null || config.slidingWindow !== null)) cannot('a final-logit soft-cap or a sliding window');
  if (config.ropeScaling !== null && !(arch === 'gemma3' && config.ropeScaling.ropeType === 'linear')) cannot(`${config.ropeScaling.ropeType} rope scaling`);
  if (arch !== 'gemma' && config.slidingWindow !== null && slidingPeriod(config.layerTypes) === null) {
    cannot(`layer types [${config.layerTypes}] (llama.cpp slides all layers but every period-th)`);
  }
  return arch;
}

/** The period whose periodicLayerTypes these are (llama.cpp's set_swa_pattern), or null when there is none. */
function slidingPeriod(types: readonly LayerAttention[]): number | null {
  for (let period = 1; period <= types.length + 1; period++) {
    const periodic = periodicLayerTypes(types.length, period);
    if (types.every((type, layer) => type === periodic[layer])) return period;
  }
  return null;
}


function qwen3Architecture(config: ModelConfig): 'qwen3' {
  const cannot = (what: string): never => {
    throw new GgufModelError('(export)', 'UNSUPPORTED', `a model with q/k norms and ${what} cannot be written to GGUF: llama.cpp's qwen3 has neither`);
  };
  if (config.attentionBias) cannot('attention biases');
  if (config.ropeScaling !== null) cannot(`${config.ropeScaling.ropeType} rope scaling`);
  return 'qwen3';
}

/** The `<arch>.*` keys llama.cpp reads for `config`, typed as convert_hf_to_gguf.py writes them. */
export function ggufHyperparameters(config: ModelConfig): [key: string, value: GgufValue][] {
  const arch = ggufArchitectureOf(config);
  const u32 = (value: number): GgufValue => ({ type: 'UINT32', value });
  const f32 = (value: number): GgufValue => ({ type: 'FLOAT32', value });
  const entries: [string, GgufValue][] = [
    [GGUF_KEY.CONTEXT_LENGTH, u32(config.maxPositionEmbeddings)],
    [GGUF_KEY.EMBEDDING_LENGTH, u32(config.hiddenSize)],
    [GGUF_KEY.BLOCK_COUNT, u32(config.numLayers)],
    [GGUF_KEY.FEED_FORWARD_LENGTH, u32(config.intermediateSize)],
    [GGUF_KEY.ATTENTION_HEAD_COUNT, u32(config.numHeads)],
    [GGUF_KEY.ATTENTION_HEAD_COUNT_KV, u32(config.numKvHeads)],
    [GGUF_KEY.ROPE_FREQ_BASE, f32(config.ropeTheta)],
    [GGUF_KEY.ATTENTION_LAYERNORM_RMS_EPS, f32(config.rmsNormEps)],
    [GGUF_KEY.ROPE_DIMENSION_COUNT, u32(config.headDim)],
    [GGUF_KEY.ATTENTION_KEY_LENGTH, u32(config.headDim)],
    [GGUF_KEY.ATTENTION_VALUE_LENGTH, u32(config.headDim)],
    [GGUF_KEY.VOCAB_SIZE, u32(config.vocabSize)],
  ];
  if (isGemmaArchitecture(arch)) entries.push(...gemmaHyperparameters(config, arch));
  return entries.map(([key, value]) => [archKey(key, arch), value]);
}

/** The Gemma keys llama.cpp reads, every default written out. */
function gemmaHyperparameters(config: ModelConfig, arch: GemmaArchitecture): [string, GgufValue][] {
  const u32 = (value: number): GgufValue => ({ type: 'UINT32', value });
  const f32 = (value: number): GgufValue => ({ type: 'FLOAT32', value });
  if (arch === 'gemma') return [];
  const entries: [string, GgufValue][] = [];
  // A Gemma 2 always slides: without a window of its own it gets one as long as its context.
  const window = config.slidingWindow ?? (arch === 'gemma2' ? config.maxPositionEmbeddings : null);
  if (window !== null) {
    entries.push([GGUF_KEY.ATTENTION_SLIDING_WINDOW, u32(window)]);
    entries.push([GGUF_KEY.ATTENTION_SLIDING_WINDOW_PATTERN, u32(config.slidingWindow === null ? GEMMA2_DEFAULTS.period : slidingPeriod(config.layerTypes)!)]);
  }
  if (config.attnLogitSoftcap !== null) entries.push([GGUF_KEY.ATTN_LOGIT_SOFTCAPPING, f32(config.attnLogitSoftcap)]);
  if (config.finalLogitSoftcap !== null) entries.push([GGUF_KEY.FINAL_LOGIT_SOFTCAPPING, f32(config.finalLogitSoftcap)]);
  if (arch === 'gemma3') {
    entries.push([GGUF_KEY.ROPE_FREQ_BASE_SWA, f32(config.localRopeTheta ?? config.ropeTheta)]);
    if (config.ropeScaling?.ropeType === 'linear') {
      entries.push([GGUF_KEY.ROPE_SCALING_TYPE, { type: 'STRING', value: 'linear' }], [GGUF_KEY.ROPE_SCALING_FACTOR, f32(config.ropeScaling.factor)]);
    }
  }
  return entries;
}

/**
 * The Gemma fields of a config as llama.cpp runs `arch`: read from the file's keys, or (keys null) the fixed
 * traits alone, for checking a config on export.
 */
function gemmaFields(
  keys: ArchKeys | null,
  arch: GemmaArchitecture,
  { hiddenSize, numHeads, headDim, numLayers }: Pick<ModelConfig, 'hiddenSize' | 'numHeads' | 'headDim' | 'numLayers'>,
): Partial<ModelConfig> & Pick<ModelConfig, 'hiddenActivation' | 'normWeightOffset' | 'embeddingScale' | 'sandwichNorms' | 'queryPreAttnScalar'> {
  const fixed = {
    hiddenActivation: 'gelu_tanh' as const,
    normWeightOffset: 1 as const,
    embeddingScale: Math.sqrt(hiddenSize),
    sandwichNorms: arch !== 'gemma',
    queryPreAttnScalar: numLayers === GEMMA_27B_LAYERS[arch] ? hiddenSize / numHeads : headDim,
  };
  if (!keys || arch === 'gemma') return fixed;
  const period = keys.optionalInteger('attention.sliding_window_pattern');
  if (arch === 'gemma2') {
    const window = keys.optionalInteger('attention.sliding_window') ?? GEMMA2_DEFAULTS.slidingWindow;
    return {
      ...fixed,
      attnLogitSoftcap: keys.optionalFloat('attn_logit_softcapping') ?? GEMMA2_DEFAULTS.attnLogitSoftcap,
      finalLogitSoftcap: keys.optionalFloat('final_logit_softcapping') ?? GEMMA2_DEFAULTS.finalLogitSoftcap,
      slidingWindow: window,
      layerTypes: periodicLayerTypes(numLayers, period ?? GEMMA2_DEFAULTS.period),
    };
  }
  const window = keys.optionalInteger('attention.sliding_window') ?? 0;
  return {
    ...fixed,
    finalLogitSoftcap: keys.optionalFloat('final_logit_softcapping') ?? null,
    localRopeTheta: keys.optionalFloat('rope.freq_base_swa') ?? GEMMA3_DEFAULTS.localRopeTheta,
    ...(window > 0 && { slidingWindow: window, layerTypes: periodicLayerTypes(numLayers, period ?? GEMMA3_DEFAULTS.period) }),
  };
}

/** Gemma 3's linear scaling of its global layers (rope.scaling.type linear, rope.scaling.factor). */
function linearRopeScaling(keys: ArchKeys): RopeScaling | null {
  const factor = keys.optionalFloat('rope.scaling.factor') ?? 1;
  return keys.optionalString('rope.scaling.type') === 'linear' && factor !== 1 ? { ropeType: 'linear', factor } : null;
}

// ---- refusals -------------------------------------------------------------------------------------------

function refuseUnsupportedFeatures(keys: ArchKeys, arch: SupportedGgufArchitecture, tensorNames: ReadonlySet<string>): void {
  const experts = keys.optionalInteger('expert_count') ?? 0;
  if (experts > 0) keys.fail('UNSUPPORTED', `${keys.name('expert_count')} is ${experts}: mixture-of-experts models are not supported`);
  const scalingType = keys.optionalString('rope.scaling.type');
  const scalingFactor = keys.optionalFloat('rope.scaling.factor') ?? 1;
  const linearAllowed = arch === 'gemma3' && scalingType === 'linear';
  if (scalingType !== undefined && scalingType !== 'none' && !linearAllowed && !(scalingType === 'linear' && scalingFactor === 1)) {
    const supported = 'only Llama 3 scaling, stored as rope_freqs.weight';
    keys.fail('UNSUPPORTED', `${keys.name('rope.scaling.type')} '${scalingType}' is not supported (${supported})`);
  }
  const window = keys.optionalInteger('attention.sliding_window') ?? 0;
  const context = keys.integer('context_length');
  if (window > 0 && window < context && !isGemmaArchitecture(arch)) {
    keys.fail(
      'UNSUPPORTED',
      `${keys.name('attention.sliding_window')} is ${window}, shorter than the ${context}-token context: sliding-window attention is not supported`,
    );
  }
  if (arch === 'phi3' && (tensorNames.has('rope_factors_long.weight') || tensorNames.has('rope_factors_short.weight'))) {
    keys.fail('UNSUPPORTED', 'Phi-3 long-rope scaling (rope_factors_long/rope_factors_short) is not supported');
  }
}

function checkHeadDims(keys: ArchKeys, headDim: number): void {
  const valueLength = keys.optionalInteger('attention.value_length') ?? headDim;
  if (valueLength !== headDim) {
    keys.fail('UNSUPPORTED', `${keys.name('attention.value_length')} ${valueLength} differs from the key length ${headDim}`);
  }
  const rotated = keys.optionalInteger('rope.dimension_count') ?? headDim;
  if (rotated !== headDim) {
    const detail = `is ${rotated} of ${headDim} head dimensions: partial rotary embeddings are not supported`;
    keys.fail('UNSUPPORTED', `${keys.name('rope.dimension_count')} ${detail}`);
  }
}

function ropeScaling(keys: ArchKeys, factors: ArrayLike<number> | null, headDim: number, theta: number): RopeScaling | null {
  if (factors === null) return null;
  const mapped = ropeScalingFromFactors(factors, headDim, theta);
  if (!mapped.ok) {
    keys.fail('UNSUPPORTED', `rope_freqs.weight cannot be run: ${mapped.reason} (only Llama 3 rope scaling is supported)`);
  }
  return mapped.scaling;
}

// ---- typed access ---------------------------------------------------------------------------------------

/** `<arch>.*` keys of one file; every failure names the file and the key. */
class ArchKeys {
  private arch = '';

  constructor(
    private readonly metadata: GgufMetadata,
    private readonly file: string,
  ) {}

  fail(code: string, detail: string): never {
    throw new GgufModelError(this.file, code, detail);
  }

  architecture(): SupportedGgufArchitecture {
    const arch = this.metadata.getString(GGUF_KEY.GENERAL_ARCHITECTURE);
    if (arch === undefined) this.fail('MISSING_KEY', `${GGUF_KEY.GENERAL_ARCHITECTURE} is missing: not a model file`);
    if (!(SUPPORTED_GGUF_ARCHITECTURES as readonly string[]).includes(arch)) {
      const hint = UNSUPPORTED_HINTS[arch];
      this.fail(
        'UNSUPPORTED_ARCHITECTURE',
        `architecture '${arch}' is not supported yet (supported: ${SUPPORTED_GGUF_ARCHITECTURES.join(', ')})${hint ? `; ${hint}` : ''}`,
      );
    }
    this.arch = arch;
    return arch as SupportedGgufArchitecture;
  }

  name(suffix: string): string {
    return `${this.arch}.${suffix}`;
  }

  integer(suffix: string): number {
    return this.optionalInteger(suffix) ?? this.missing(suffix, 'a positive integer');
  }

  optionalInteger(suffix: string): number | undefined {
    const value = this.metadata.getNumber(this.name(suffix));
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
      this.fail('INVALID_METADATA', `${this.name(suffix)} must be a non-negative integer, got ${value}`);
    }
    return value;
  }

  /** A number per model or one per layer (llama.cpp accepts both); per-layer values must all be equal. */
  uniformInteger(suffix: string): number {
    return this.optionalUniformInteger(suffix) ?? this.missing(suffix, 'a positive integer');
  }

  optionalUniformInteger(suffix: string): number | undefined {
    const entry = this.metadata.get(this.name(suffix));
    if (entry?.type !== 'ARRAY') return this.optionalInteger(suffix);
    const values = this.metadata.getNumberArray(this.name(suffix)) ?? [];
    if (values.length === 0 || values.some((v) => v !== values[0])) {
      this.fail('UNSUPPORTED', `${this.name(suffix)} differs between layers (${describeValue(values)}), which this model cannot run`);
    }
    return values[0];
  }

  float(suffix: string): number {
    return this.optionalFloat(suffix) ?? this.missing(suffix, 'a number');
  }

  /** Float32 values come back as the shortest decimal that rounds to them (1e-5, not 9.99999974737875e-6). */
  optionalFloat(suffix: string): number | undefined {
    const key = this.name(suffix);
    const entry = this.metadata.get(key);
    const value = this.metadata.getNumber(key);
    if (value === undefined) return undefined;
    if (!Number.isFinite(value) || value <= 0) this.fail('INVALID_METADATA', `${key} must be a positive number, got ${value}`);
    return entry?.type === 'FLOAT32' ? shortestFloat32Decimal(value) : value;
  }

  optionalString(suffix: string): string | undefined {
    return this.metadata.getString(this.name(suffix));
  }

  optionalTokenId(key: string): number | null {
    return this.metadata.getNumber(key) ?? null;
  }

  /** `<arch>.vocab_size` is optional: llama.cpp counts the tokens. */
  tokenCount(): number {
    const tokens = this.metadata.getStringArray(GGUF_KEY.TOKENIZER_TOKENS);
    return tokens?.length ?? this.missing('vocab_size', `a positive integer (or a ${GGUF_KEY.TOKENIZER_TOKENS} array)`);
  }

  private missing(suffix: string, expected: string): never {
    return this.fail('MISSING_KEY', `${this.name(suffix)} is missing (expected ${expected})`);
  }
}

function shortestFloat32Decimal(value: number): number {
  for (let digits = 1; digits < 17; digits++) {
    const decimal = Number(value.toPrecision(digits));
    if (Math.fround(decimal) === value) return decimal;
  }
  return value;
}
