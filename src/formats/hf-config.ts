/**
 * Hugging Face `config.json` <-> ModelConfig for the Llama family this project runs: llama, mistral, qwen2,
 * qwen3, and (load only) phi3, a Llama whose fused qkv_proj and gate_up_proj hf-model-dir.ts splits on
 * load, so it runs and is written back as `llama`.
 * Field names and defaults follow transformers' LlamaConfig / MistralConfig / Qwen2Config; anything that
 * would make the checkpoint compute something our transformer does not is refused by name.
 */
import { resolveModelConfig } from '../model/config.ts';
import type { LongRope, ModelConfig, RopeScaling } from '../model/config.ts';
import { describeValue, FormatError } from './format-error.ts';
import type { WritableDtype } from './safetensors.ts';

export class HfModelDirError extends FormatError {}

const ARCHITECTURES = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
} as const;

/** Model types read as another one, whose config.json fields mean the same. */
const LOADED_AS: Record<string, keyof typeof ARCHITECTURES> = { phi3: 'llama' };

type SupportedModelType = keyof typeof ARCHITECTURES;
type ReadableModelType = SupportedModelType | 'phi3';

const TORCH_DTYPES: Record<WritableDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** Maps a parsed config.json; `file` names it in errors. */
export function modelConfigFromHf(raw: Record<string, unknown>, file: string): ModelConfig {
  const fields = new ConfigFields(raw, file);
  const modelType = supportedModelType(fields);
  fields.refuseUnless('hidden_act', (v) => v === undefined || v === 'silu', 'only silu is supported');
  fields.refuseUnless('mlp_bias', (v) => v === undefined || v === false, 'MLP biases are not supported');
  if (modelType !== 'qwen2') {
    // Llama's attention_bias also puts a bias on o_proj, which this model does not have
    fields.refuseUnless('attention_bias', (v) => v === undefined || v === false, 'attention biases are only supported for qwen2');
  }

  const maxPositionEmbeddings = fields.optionalInteger('max_position_embeddings');
  const input = {
    ...slidingWindow(fields, modelType, maxPositionEmbeddings ?? 2048),
    modelType: LOADED_AS[modelType] ?? modelType,
    vocabSize: fields.integer('vocab_size'),
    hiddenSize: fields.integer('hidden_size'),
    intermediateSize: fields.integer('intermediate_size'),
    numLayers: fields.integer('num_hidden_layers'),
    numHeads: fields.integer('num_attention_heads'),
    numKvHeads: fields.optionalInteger('num_key_value_heads'),
    headDim: fields.optionalInteger('head_dim'),
    rmsNormEps: fields.optionalNumber('rms_norm_eps') ?? 1e-6,
    ropeTheta: fields.optionalNumber('rope_theta') ?? ropeParameters(fields)?.optionalNumber('rope_theta') ?? 10000,
    ropeScaling: ropeScaling(fields),
    longRope: longRope(fields, maxPositionEmbeddings ?? 2048, rotaryDimOf(fields)),
    rotaryDim: rotaryDimOf(fields),
    maxPositionEmbeddings,
    // Qwen2 always has q/k/v biases; its config has no flag for them
    attentionBias: modelType === 'qwen2',
    qkNorm: modelType === 'qwen3',
    tieWordEmbeddings: fields.optionalBoolean('tie_word_embeddings') ?? false,
    bosTokenId: fields.tokenId('bos_token_id'),
    eosTokenId: fields.tokenId('eos_token_id'),
    stopTokenIds: fields.tokenIds('eos_token_id'),
  };
  try {
    return resolveModelConfig(input);
  } catch (error) {
    throw new HfModelDirError(file, 'INVALID_CONFIG', (error as Error).message, { cause: error });
  }
}

/** A config.json that transformers loads into the same architecture, for weights stored as `dtype`. */
export function hfConfigJson(config: ModelConfig, dtype: WritableDtype = 'F32'): Record<string, unknown> {
  const modelType = config.modelType;
  if (!isSupported(modelType)) {
    throw new HfModelDirError('config.json', 'UNSUPPORTED', `model_type '${modelType}' cannot be exported; supported: ${supportedList()}`);
  }
  if (config.qkNorm !== (modelType === 'qwen3')) {
    throw new HfModelDirError('config.json', 'UNSUPPORTED', `qkNorm ${config.qkNorm} cannot be expressed for model_type '${modelType}' (only qwen3 has q/k norms)`);
  }
  if (config.attentionBias !== (modelType === 'qwen2')) {
    throw new HfModelDirError(
      'config.json',
      'UNSUPPORTED',
      `attentionBias ${config.attentionBias} cannot be expressed for model_type '${modelType}' (qwen2 always has q/k/v biases, llama and mistral none)`,
    );
  }
  const scaling = config.ropeScaling;
  return {
    architectures: [ARCHITECTURES[modelType]],
    model_type: modelType,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    hidden_act: 'silu',
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: scaling && {
      rope_type: scaling.ropeType,
      factor: scaling.factor,
      low_freq_factor: scaling.lowFreqFactor,
      high_freq_factor: scaling.highFreqFactor,
      original_max_position_embeddings: scaling.originalMaxPositionEmbeddings,
    },
    max_position_embeddings: config.maxPositionEmbeddings,
    tie_word_embeddings: config.tieWordEmbeddings,
    bos_token_id: config.bosTokenId,
    eos_token_id: config.stopTokenIds.length > 1 ? config.stopTokenIds : config.eosTokenId,
    torch_dtype: TORCH_DTYPES[dtype],
    use_cache: true,
    ...typeSpecificFields(modelType),
    ...slidingWindowJson(config, modelType),
    ...longRopeJson(config),
  };
}

function typeSpecificFields(modelType: SupportedModelType): Record<string, unknown> {
  switch (modelType) {
    case 'llama':
      return { attention_bias: false, mlp_bias: false };
    case 'mistral':
      // MistralConfig defaults to a 4096-token window; this model attends to the whole context
      return { sliding_window: null };
    case 'qwen2':
      return { use_sliding_window: false };
    case 'qwen3':
      return { attention_bias: false, use_sliding_window: false };
  }
}

/** longrope in rope_scaling, with every derived number written out; partial rotary has no Llama-family setting. */
function longRopeJson(config: ModelConfig): Record<string, unknown> {
  if (config.rotaryDim !== config.headDim) {
    throw new HfModelDirError('(export)', 'UNSUPPORTED', `partial rotary embeddings (${config.rotaryDim} of ${config.headDim} dimensions) have no setting in the Llama-family configs written here`);
  }
  const long = config.longRope;
  if (!long) return {};
  return {
    rope_scaling: { rope_type: 'longrope', short_factor: long.shortFactor, long_factor: long.longFactor, original_max_position_embeddings: long.originalMaxPositionEmbeddings, attention_factor: long.attentionFactor },
  };
}

/** The window as each family's config writes it (over typeSpecificFields' defaults). */
function slidingWindowJson(config: ModelConfig, modelType: SupportedModelType): Record<string, unknown> {
  if (config.slidingWindow === null) return {};
  if (modelType === 'qwen2' || modelType === 'qwen3') return { use_sliding_window: true, sliding_window: config.slidingWindow, max_window_layers: config.slidingFromLayer };
  if (modelType === 'llama') {
    // Phi-3 loads as a llama; transformers' Llama has no window and would attend to the whole context.
    throw new HfModelDirError('(export)', 'UNSUPPORTED', `a llama-type model with a ${config.slidingWindow}-token sliding window (Phi-3's) cannot be written as config.json: transformers' LlamaForCausalLM has no sliding window`);
  }
  if (config.slidingFromLayer > 0) throw new HfModelDirError('(export)', 'UNSUPPORTED', `model_type '${modelType}' has no setting for a window from layer ${config.slidingFromLayer} on`);
  return { sliding_window: config.slidingWindow };
}

function supportedModelType(fields: ConfigFields): ReadableModelType {
  const modelType = fields.raw.model_type;
  if (typeof modelType !== 'string') fields.fail('INVALID_CONFIG', `model_type must be a string, got ${describeValue(modelType)}`);
  if (modelType === 'phi3') return modelType;
  if (!isSupported(modelType)) {
    const later = typeof modelType === 'string' && modelType.startsWith('gemma') ? '; Gemma 2/3 support may follow' : '';
    fields.fail('UNSUPPORTED', `model_type '${modelType}' is not supported yet; supported: ${supportedList()}${later}`);
  }
  return modelType;
}

function isSupported(modelType: string): modelType is SupportedModelType {
  return Object.hasOwn(ARCHITECTURES, modelType);
}

function supportedList(): string {
  return Object.keys(ARCHITECTURES).join(', ');
}

/**
 * Mistral and Phi-3 use their window in every layer (null or absent means none); Qwen only with
 * use_sliding_window, and only in the layers from max_window_layers on (transformers' layer_types). A
 * window as long as the context changes nothing and is dropped.
 */
function slidingWindow(fields: ConfigFields, modelType: ReadableModelType, maxPositions: number): { slidingWindow: number | null; slidingFromLayer: number } {
  const none = { slidingWindow: null, slidingFromLayer: 0 };
  const window = fields.raw.sliding_window;
  const qwen = modelType.startsWith('qwen');
  const active = modelType === 'mistral' || modelType === 'phi3' || (qwen && fields.raw.use_sliding_window === true);
  if (!active || window === undefined || window === null) return none;
  if (!Number.isInteger(window) || (window as number) < 1) fields.fail('INVALID_CONFIG', `sliding_window must be a positive integer or null, got ${describeValue(window)}`);
  if ((window as number) >= maxPositions) return none;
  return { slidingWindow: window as number, slidingFromLayer: qwen ? (fields.optionalInteger('max_window_layers') ?? 0) : 0 };
}

/**
 * transformers 5 writes `rope_parameters` (with rope_theta inside) where version 4 wrote `rope_scaling`
 * next to a top-level rope_theta; both spellings are read.
 */
function ropeParameters(fields: ConfigFields): ConfigFields | undefined {
  const key = fields.raw.rope_parameters != null ? 'rope_parameters' : 'rope_scaling';
  const raw = fields.raw[key];
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) fields.fail('INVALID_CONFIG', `${key} must be an object or null, got ${describeValue(raw)}`);
  return new ConfigFields(raw as Record<string, unknown>, fields.file, `${key}.`);
}

/** "type" is the older spelling of "rope_type"; Phi-3's "su" is longrope's earlier name. */
function ropeTypeOf(scaling: ConfigFields): string {
  const ropeType = scaling.raw.rope_type ?? scaling.raw.type ?? 'default';
  return ropeType === 'su' ? 'longrope' : String(ropeType);
}

function ropeScaling(fields: ConfigFields): RopeScaling | null {
  const scaling = ropeParameters(fields);
  if (!scaling) return null;
  const ropeType = ropeTypeOf(scaling);
  if (ropeType === 'default' || ropeType === 'longrope') return null;
  if (ropeType !== 'llama3') {
    scaling.fail('UNSUPPORTED', `${scaling.prefix}rope_type ${describeValue(scaling.raw.rope_type ?? scaling.raw.type)} is not supported; supported: default, llama3, longrope`);
  }
  return {
    ropeType: 'llama3',
    factor: scaling.number('factor'),
    lowFreqFactor: scaling.number('low_freq_factor'),
    highFreqFactor: scaling.number('high_freq_factor'),
    originalMaxPositionEmbeddings: scaling.integer('original_max_position_embeddings'),
  };
}

/** head_dim (or hidden / heads) x partial_rotary_factor: the dimensions of a head that rotate. */
function rotaryDimOf(fields: ConfigFields): number {
  const headDim = fields.optionalInteger('head_dim') ?? fields.integer('hidden_size') / fields.integer('num_attention_heads');
  const factor = fields.raw.partial_rotary_factor ?? 1;
  if (typeof factor !== 'number' || !(factor > 0 && factor <= 1)) fields.fail('INVALID_CONFIG', `partial_rotary_factor must be in (0, 1], got ${describeValue(factor)}`);
  return Math.floor(headDim * factor);
}

/**
 * longrope as transformers computes it: factor = max_position_embeddings / original_max_position_embeddings
 * (top-level, as Phi-3 writes it, or inside rope_scaling), attention_factor when given, else
 * sqrt(1 + ln(factor) / ln(original)) above 1.
 */
function longRope(fields: ConfigFields, maxPositions: number, rotaryDim: number): LongRope | null {
  const scaling = ropeParameters(fields);
  if (!scaling || ropeTypeOf(scaling) !== 'longrope') return null;
  const factors = (key: string) => {
    const value = scaling.raw[key];
    if (!Array.isArray(value) || value.length !== rotaryDim / 2 || !value.every((v) => typeof v === 'number' && v > 0)) {
      scaling.fail('INVALID_CONFIG', `${scaling.prefix}${key} must list ${rotaryDim / 2} positive numbers (rotary dimensions / 2), got ${describeValue(value)}`);
    }
    return value as number[];
  };
  const original = fields.optionalInteger('original_max_position_embeddings') ?? scaling.integer('original_max_position_embeddings');
  const factor = maxPositions / original;
  const attentionFactor = scaling.optionalNumber('attention_factor') ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original)));
  return { shortFactor: factors('short_factor'), longFactor: factors('long_factor'), originalMaxPositionEmbeddings: original, attentionFactor };
}

/** Typed access to config keys; every error names the file and the key path. */
class ConfigFields {
  constructor(
    readonly raw: Record<string, unknown>,
    readonly file: string,
    /** Key path of this object inside config.json, for messages. */
    readonly prefix = '',
  ) {}

  fail(code: string, detail: string): never {
    throw new HfModelDirError(this.file, code, detail);
  }

  integer(key: string): number {
    return this.required(key, this.optionalInteger(key));
  }

  optionalInteger(key: string): number | undefined {
    const value = this.raw[key];
    if (value === undefined || value === null) return undefined;
    if (!Number.isSafeInteger(value) || (value as number) <= 0) {
      this.fail('INVALID_CONFIG', `${this.prefix}${key} must be a positive integer, got ${describeValue(value)}`);
    }
    return value as number;
  }

  number(key: string): number {
    return this.required(key, this.optionalNumber(key));
  }

  optionalNumber(key: string): number | undefined {
    const value = this.raw[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
      this.fail('INVALID_CONFIG', `${this.prefix}${key} must be a positive number, got ${describeValue(value)}`);
    }
    return value;
  }

  optionalBoolean(key: string): boolean | undefined {
    const value = this.raw[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'boolean') this.fail('INVALID_CONFIG', `${this.prefix}${key} must be true or false, got ${describeValue(value)}`);
    return value;
  }

  /** A token id, or a list of them of which the first counts (Llama 3 lists several eos ids). */
  tokenId(key: string): number | null {
    const raw = this.raw[key];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value === undefined || value === null) return null;
    if (!Number.isSafeInteger(value) || (value as number) < 0) {
      this.fail('INVALID_CONFIG', `${this.prefix}${key} must be a token id or a list of them, got ${describeValue(raw)}`);
    }
    return value as number;
  }

  /** Every id of a token id or a list of them; none when absent. */
  tokenIds(key: string): number[] {
    const raw = this.raw[key];
    if (raw === undefined || raw === null) return [];
    const ids = Array.isArray(raw) ? raw : [raw];
    if (!ids.every((id) => Number.isSafeInteger(id) && id >= 0)) {
      this.fail('INVALID_CONFIG', `${this.prefix}${key} must be a token id or a list of them, got ${describeValue(raw)}`);
    }
    return ids as number[];
  }

  required<T>(key: string, value: T | undefined): T {
    if (value === undefined) this.fail('INVALID_CONFIG', `${this.prefix}${key} is required`);
    return value;
  }

  refuseUnless(key: string, accept: (value: unknown) => boolean, reason: string): void {
    const value = this.raw[key];
    if (!accept(value)) this.fail('UNSUPPORTED', `${this.prefix}${key} ${describeValue(value)} is not supported: ${reason}`);
  }
}
