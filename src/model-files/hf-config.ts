/**
 * Hugging Face `config.json` <-> ModelConfig for the families this project runs: llama, mistral, qwen2,
 * qwen3, gemma, gemma2, gemma3_text, and (load only) phi3, a Llama whose fused qkv_proj and gate_up_proj
 * hf-model-dir.ts splits on load, so it runs and is written back as `llama`, and gemma3, the vision-language
 * Gemma 3 whose text model (text_config) runs and is written back as `gemma3_text`.
 * Field names and defaults follow transformers' LlamaConfig / MistralConfig / Qwen2Config / GemmaConfig /
 * Gemma2Config / Gemma3TextConfig; anything that would make the checkpoint compute something our transformer
 * does not is refused by name.
 */
import { periodicLayerTypes, resolveModelConfig } from '../model/config.ts';
import type { LayerAttention, LongRope, ModelConfig, RopeScaling } from '../model/config.ts';
import { describeValue, FormatError } from '../formats/format-error.ts';
import type { WritableDtype } from '../formats/safetensors.ts';

export class HfModelDirError extends FormatError {}

const ARCHITECTURES = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
  gemma: 'GemmaForCausalLM',
  gemma2: 'Gemma2ForCausalLM',
  gemma3_text: 'Gemma3ForCausalLM',
} as const;

/** Model types read as another one, whose config.json fields mean the same. */
const LOADED_AS: Record<string, keyof typeof ARCHITECTURES> = { phi3: 'llama', gemma3: 'gemma3_text' };

type SupportedModelType = keyof typeof ARCHITECTURES;
type ReadableModelType = SupportedModelType | 'phi3' | 'gemma3';
type GemmaModelType = 'gemma' | 'gemma2' | 'gemma3_text';

/**
 * The defaults of transformers' Gemma configs: the hub's Gemma 3 vision-language configs leave most text_config
 * fields out (gemma-3-4b gives its sizes and window, not its heads or vocabulary).
 */
const GEMMA_DEFAULTS: Record<GemmaModelType, Record<string, unknown>> = {
  gemma: { vocab_size: 256000, hidden_size: 3072, intermediate_size: 24576, num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 16, head_dim: 256, max_position_embeddings: 8192, rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: true, bos_token_id: 2, eos_token_id: 1 },
  gemma2: {
    vocab_size: 256000, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 256,
    max_position_embeddings: 8192, rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: true, bos_token_id: 2, eos_token_id: 1,
    query_pre_attn_scalar: 256, sliding_window: 4096, final_logit_softcapping: 30.0, attn_logit_softcapping: 50.0,
  },
  gemma3_text: {
    vocab_size: 262208, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 256,
    max_position_embeddings: 131072, rms_norm_eps: 1e-6, rope_theta: 1_000_000, tie_word_embeddings: true, bos_token_id: 2, eos_token_id: 1,
    query_pre_attn_scalar: 256, sliding_window: 4096, final_logit_softcapping: null, attn_logit_softcapping: null, rope_local_base_freq: 10000, sliding_window_pattern: 6,
  },
};

/** Which layers of a Gemma slide, when the config has no layer_types: Gemma 2 every other from the first, Gemma 3 all but every sixth. */
const GEMMA_SLIDING_PERIOD: Record<'gemma2' | 'gemma3_text', number> = { gemma2: 2, gemma3_text: 6 };

const TORCH_DTYPES: Record<WritableDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** Maps a parsed config.json; `file` names it in errors. */
export function modelConfigFromHf(raw: Record<string, unknown>, file: string): ModelConfig {
  const readAs = supportedModelType(new ConfigFields(raw, file));
  const fields = readAs === 'gemma3' ? textConfigFields(raw, file) : new ConfigFields(withGemmaDefaults(raw, readAs), file);
  const modelType = LOADED_AS[readAs] ?? (readAs as SupportedModelType);
  const gemma = isGemma(modelType);
  fields.refuseUnless('mlp_bias', (v) => v === undefined || v === false, 'MLP biases are not supported');
  if (modelType !== 'qwen2') {
    // Llama's attention_bias also puts a bias on o_proj, which this model does not have
    fields.refuseUnless('attention_bias', (v) => v === undefined || v === false, 'attention biases are only supported for qwen2');
  }

  const maxPositionEmbeddings = fields.optionalInteger('max_position_embeddings');
  const numLayers = fields.integer('num_hidden_layers');
  const input = {
    ...slidingWindow(fields, readAs, maxPositionEmbeddings ?? 2048, numLayers),
    ...(gemma ? gemmaFields(fields, modelType) : { hiddenActivation: hiddenActivation(fields, modelType) }),
    modelType,
    vocabSize: fields.integer('vocab_size'),
    hiddenSize: fields.integer('hidden_size'),
    intermediateSize: fields.integer('intermediate_size'),
    numLayers,
    numHeads: fields.integer('num_attention_heads'),
    numKvHeads: fields.optionalInteger('num_key_value_heads'),
    headDim: fields.optionalInteger('head_dim'),
    rmsNormEps: fields.optionalNumber('rms_norm_eps') ?? 1e-6,
    ropeTheta: fields.optionalNumber('rope_theta') ?? globalRopeParameters(fields)?.optionalNumber('rope_theta') ?? 10000,
    ropeScaling: ropeScaling(fields),
    longRope: longRope(fields, maxPositionEmbeddings ?? 2048, rotaryDimOf(fields)),
    rotaryDim: rotaryDimOf(fields),
    maxPositionEmbeddings,
    // Qwen2 always has q/k/v biases; its config has no flag for them
    attentionBias: modelType === 'qwen2',
    qkNorm: modelType === 'qwen3' || modelType === 'gemma3_text',
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

function isGemma(modelType: string): modelType is GemmaModelType {
  return Object.hasOwn(GEMMA_DEFAULTS, modelType);
}

function withGemmaDefaults(raw: Record<string, unknown>, modelType: string): Record<string, unknown> {
  return isGemma(modelType) ? { ...GEMMA_DEFAULTS[modelType], ...raw } : raw;
}

/**
 * A vision-language Gemma 3's text model: text_config over Gemma3TextConfig's defaults, with the outer
 * config's token ids, which generation reads (gemma-3-4b-it: eos [1, 106] there, none in text_config).
 */
function textConfigFields(raw: Record<string, unknown>, file: string): ConfigFields {
  const text = raw.text_config ?? {};
  if (typeof text !== 'object' || text === null || Array.isArray(text)) {
    throw new HfModelDirError(file, 'INVALID_CONFIG', `text_config must be an object, got ${describeValue(text)}`);
  }
  const outer = Object.fromEntries(['bos_token_id', 'eos_token_id', 'tie_word_embeddings'].filter((key) => raw[key] != null).map((key) => [key, raw[key]]));
  return new ConfigFields({ ...GEMMA_DEFAULTS.gemma3_text, ...text, ...outer, model_type: 'gemma3_text' }, file, 'text_config.');
}

/** The MLP activation transformers applies: silu for the Llama lineage. */
function hiddenActivation(fields: ConfigFields, modelType: SupportedModelType): 'silu' {
  fields.refuseUnless('hidden_act', (v) => v === undefined || v === 'silu', `only silu is supported for ${modelType}`);
  return 'silu';
}

/**
 * Gemma's departures from the Llama block: GeGLU with the tanh gelu (Gemma 1's configs say hidden_act "gelu"
 * and mean it, as its reference code and llama.cpp do), (1 + w) norms, embeddings times sqrt(hidden), and from
 * Gemma 2 on norms around each sublayer, query_pre_attn_scalar and soft-capping.
 */
function gemmaFields(fields: ConfigFields, modelType: GemmaModelType): Partial<ModelConfig> {
  const activation = fields.raw.hidden_activation ?? fields.raw.hidden_act ?? 'gelu_pytorch_tanh';
  const accepted = modelType === 'gemma' ? ['gelu_pytorch_tanh', 'gelu'] : ['gelu_pytorch_tanh'];
  if (!accepted.includes(activation as string)) {
    fields.fail('UNSUPPORTED', `${fields.prefix}hidden_activation ${describeValue(activation)} is not supported: Gemma runs gelu_pytorch_tanh`);
  }
  const later = modelType !== 'gemma';
  const cap = (key: string) => (later ? (fields.optionalNumber(key) ?? null) : null);
  return {
    hiddenActivation: 'gelu_tanh',
    normWeightOffset: 1,
    embeddingScale: Math.sqrt(fields.integer('hidden_size')),
    sandwichNorms: later,
    queryPreAttnScalar: later ? fields.optionalNumber('query_pre_attn_scalar') : undefined,
    attnLogitSoftcap: cap('attn_logit_softcapping'),
    finalLogitSoftcap: cap('final_logit_softcapping'),
    localRopeTheta: modelType === 'gemma3_text' ? (fields.optionalNumber('rope_local_base_freq') ?? localRopeParameters(fields)?.optionalNumber('rope_theta') ?? 10000) : null,
  };
}

/** A config.json that transformers loads into the same architecture, for weights stored as `dtype`. */
export function hfConfigJson(config: ModelConfig, dtype: WritableDtype = 'F32'): Record<string, unknown> {
  const modelType = config.modelType;
  if (!isSupported(modelType)) {
    throw new HfModelDirError('config.json', 'UNSUPPORTED', `model_type '${modelType}' cannot be exported; supported: ${supportedList()}`);
  }
  if (config.qkNorm !== (modelType === 'qwen3' || modelType === 'gemma3_text')) {
    throw new HfModelDirError('config.json', 'UNSUPPORTED', `qkNorm ${config.qkNorm} cannot be expressed for model_type '${modelType}' (only qwen3 and gemma3_text have q/k norms)`);
  }
  if (config.attentionBias !== (modelType === 'qwen2')) {
    throw new HfModelDirError(
      'config.json',
      'UNSUPPORTED',
      `attentionBias ${config.attentionBias} cannot be expressed for model_type '${modelType}' (qwen2 always has q/k/v biases, the others none)`,
    );
  }
  const json = {
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
    rope_scaling: ropeScalingJson(config.ropeScaling),
    max_position_embeddings: config.maxPositionEmbeddings,
    tie_word_embeddings: config.tieWordEmbeddings,
    bos_token_id: config.bosTokenId,
    eos_token_id: config.stopTokenIds.length > 1 ? config.stopTokenIds : config.eosTokenId,
    torch_dtype: TORCH_DTYPES[dtype],
    use_cache: true,
    ...typeSpecificFields(config, modelType),
    ...slidingWindowJson(config, modelType),
    ...longRopeJson(config),
  };
  refuseUnexpressed(config, json);
  return json;
}

function ropeScalingJson(scaling: RopeScaling | null): Record<string, unknown> | null {
  if (scaling?.ropeType === 'linear') return { rope_type: 'linear', factor: scaling.factor };
  return (
    scaling && {
      rope_type: scaling.ropeType,
      factor: scaling.factor,
      low_freq_factor: scaling.lowFreqFactor,
      high_freq_factor: scaling.highFreqFactor,
      original_max_position_embeddings: scaling.originalMaxPositionEmbeddings,
    }
  );
}

/** Reads `json` back and refuses it when a setting of the model did not survive (a Gemma trait on a Llama, say). */
function refuseUnexpressed(config: ModelConfig, json: Record<string, unknown>): void {
  const read = modelConfigFromHf(json, '(export)');
  const keys = ['hiddenActivation', 'normWeightOffset', 'embeddingScale', 'sandwichNorms', 'queryPreAttnScalar', 'attnLogitSoftcap', 'finalLogitSoftcap', 'localRopeTheta', 'ropeScaling', 'layerTypes', 'slidingWindow'] as const;
  for (const key of keys) {
    if (JSON.stringify(read[key]) !== JSON.stringify(config[key])) {
      throw new HfModelDirError('(export)', 'UNSUPPORTED', `${key} ${JSON.stringify(config[key])} cannot be written as a '${config.modelType}' config.json (it would read as ${JSON.stringify(read[key])})`);
    }
  }
}

function typeSpecificFields(config: ModelConfig, modelType: SupportedModelType): Record<string, unknown> {
  const gemma = { hidden_act: 'gelu_pytorch_tanh', hidden_activation: 'gelu_pytorch_tanh', attention_bias: false };
  const gemmaLater = {
    ...gemma,
    query_pre_attn_scalar: config.queryPreAttnScalar,
    attn_logit_softcapping: config.attnLogitSoftcap,
    final_logit_softcapping: config.finalLogitSoftcap,
    cache_implementation: 'hybrid',
  };
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
    case 'gemma':
      return gemma;
    case 'gemma2':
      return gemmaLater;
    case 'gemma3_text':
      return { ...gemmaLater, rope_local_base_freq: config.localRopeTheta, sliding_window_pattern: GEMMA_SLIDING_PERIOD.gemma3_text };
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

/**
 * The window as each family's config writes it (over typeSpecificFields' defaults). Gemma 2/3 always
 * slide in their local layers, so a Gemma without a window gets one as long as its context.
 */
function slidingWindowJson(config: ModelConfig, modelType: SupportedModelType): Record<string, unknown> {
  if (modelType === 'gemma2' || modelType === 'gemma3_text') {
    return {
      sliding_window: config.slidingWindow ?? config.maxPositionEmbeddings,
      layer_types: config.layerTypes.map((type) => `${type}_attention`),
    };
  }
  if (config.slidingWindow === null) return {};
  if (modelType === 'qwen2' || modelType === 'qwen3') return { use_sliding_window: true, sliding_window: config.slidingWindow, max_window_layers: qwenWindowLayers(config) };
  if (modelType === 'llama' || modelType === 'gemma') {
    // Phi-3 loads as a llama; transformers' Llama and Gemma have no window and would attend to the whole context.
    throw new HfModelDirError('(export)', 'UNSUPPORTED', `a ${modelType}-type model with a ${config.slidingWindow}-token sliding window (Phi-3's) cannot be written as config.json: transformers' ${ARCHITECTURES[modelType]} has no sliding window`);
  }
  if (config.layerTypes.includes('full')) throw new HfModelDirError('(export)', 'UNSUPPORTED', `model_type '${modelType}' has no setting for a window in some layers only`);
  return { sliding_window: config.slidingWindow };
}

/** Qwen slides in the layers from max_window_layers on: the count of full layers before them. */
function qwenWindowLayers(config: ModelConfig): number {
  const first = config.layerTypes.indexOf('sliding');
  if (config.layerTypes.slice(first).includes('full')) throw new HfModelDirError('(export)', 'UNSUPPORTED', `a Qwen config slides in the layers from max_window_layers on; these layer types cannot be written: [${config.layerTypes}]`);
  return first;
}

function supportedModelType(fields: ConfigFields): ReadableModelType {
  const modelType = fields.raw.model_type;
  if (typeof modelType !== 'string') fields.fail('INVALID_CONFIG', `model_type must be a string, got ${describeValue(modelType)}`);
  if (modelType === 'phi3' || modelType === 'gemma3') return modelType;
  if (!isSupported(modelType)) fields.fail('UNSUPPORTED', `model_type '${modelType}' is not supported yet; supported: ${supportedList()}, phi3, gemma3`);
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
 * use_sliding_window, and only in the layers from max_window_layers on; Gemma 2/3 in their local layers.
 * transformers' `layer_types`, where a config has it, says which layers slide. A window as long as the
 * context changes nothing and is dropped.
 */
function slidingWindow(fields: ConfigFields, modelType: ReadableModelType, maxPositions: number, numLayers: number): Partial<Pick<ModelConfig, 'slidingWindow' | 'layerTypes'>> {
  const none = { slidingWindow: null };
  const window = fields.raw.sliding_window;
  const qwen = modelType.startsWith('qwen');
  const gemma = modelType === 'gemma2' || modelType === 'gemma3' || modelType === 'gemma3_text';
  const active = modelType === 'mistral' || modelType === 'phi3' || gemma || (qwen && fields.raw.use_sliding_window === true);
  if (!active || window === undefined || window === null) return none;
  if (!Number.isInteger(window) || (window as number) < 1) fields.fail('INVALID_CONFIG', `${fields.prefix}sliding_window must be a positive integer or null, got ${describeValue(window)}`);
  // Gemma 3's local layers keep their own RoPE base however long the window: its layer types always count.
  if ((window as number) >= maxPositions && !gemma) return none;
  const layerTypes = listedLayerTypes(fields, numLayers) ?? defaultLayerTypes(fields, modelType, numLayers);
  return layerTypes.includes('sliding') ? { slidingWindow: window as number, layerTypes } : none;
}

/** Where a config has no layer_types: Qwen from max_window_layers on, Gemma by its period, the others everywhere. */
function defaultLayerTypes(fields: ConfigFields, modelType: ReadableModelType, numLayers: number): LayerAttention[] {
  if (modelType.startsWith('qwen')) {
    const fullLayers = fields.optionalInteger('max_window_layers') ?? 0;
    return Array.from({ length: numLayers }, (_, layer) => (layer >= fullLayers ? 'sliding' : 'full'));
  }
  if (modelType === 'gemma2') return periodicLayerTypes(numLayers, GEMMA_SLIDING_PERIOD.gemma2);
  if (modelType === 'gemma3' || modelType === 'gemma3_text') return periodicLayerTypes(numLayers, fields.optionalInteger('sliding_window_pattern') ?? GEMMA_SLIDING_PERIOD.gemma3_text);
  return Array<LayerAttention>(numLayers).fill('sliding');
}

/** transformers' `layer_types` ("sliding_attention" / "full_attention" per layer), when the config lists them. */
function listedLayerTypes(fields: ConfigFields, numLayers: number): LayerAttention[] | undefined {
  const listed = fields.raw.layer_types;
  if (listed === undefined || listed === null) return undefined;
  const names: Record<string, LayerAttention> = { sliding_attention: 'sliding', full_attention: 'full' };
  if (!Array.isArray(listed) || listed.length !== numLayers || !listed.every((type) => Object.hasOwn(names, type))) {
    fields.fail('INVALID_CONFIG', `${fields.prefix}layer_types must list "sliding_attention" or "full_attention" for each of the ${numLayers} layers, got ${describeValue(listed)}`);
  }
  return (listed as string[]).map((type) => names[type]);
}

/**
 * transformers 5 writes `rope_parameters` (with rope_theta inside) where version 4 wrote `rope_scaling`
 * next to a top-level rope_theta; both spellings are read. Gemma 3's has one set per layer type
 * (`full_attention`, `sliding_attention`): this is the global layers' set.
 */
function globalRopeParameters(fields: ConfigFields): ConfigFields | undefined {
  const parameters = ropeParameters(fields);
  return parameters?.raw.full_attention == null ? parameters : parameters.child('full_attention');
}

/** Gemma 3's local layers' rope set in transformers 5's rope_parameters, when there is one. */
function localRopeParameters(fields: ConfigFields): ConfigFields | undefined {
  const parameters = ropeParameters(fields);
  return parameters?.raw.sliding_attention == null ? undefined : parameters.child('sliding_attention');
}

function ropeParameters(fields: ConfigFields): ConfigFields | undefined {
  const key = fields.raw.rope_parameters != null ? 'rope_parameters' : 'rope_scaling';
  if (fields.raw[key] === undefined || fields.raw[key] === null) return undefined;
  return fields.child(key);
}

/** "type" is the older spelling of "rope_type"; Phi-3's "su" is longrope's earlier name. */
function ropeTypeOf(scaling: ConfigFields): string {
  const ropeType = scaling.raw.rope_type ?? scaling.raw.type ?? 'default';
  return ropeType === 'su' ? 'longrope' : String(ropeType);
}

function ropeScaling(fields: ConfigFields): RopeScaling | null {
  const scaling = globalRopeParameters(fields);
  if (!scaling) return null;
  const ropeType = ropeTypeOf(scaling);
  if (ropeType === 'default' || ropeType === 'longrope') return null;
  if (ropeType === 'linear') return { ropeType: 'linear', factor: scaling.number('factor') };
  if (ropeType !== 'llama3') {
    scaling.fail('UNSUPPORTED', `${scaling.prefix}rope_type ${describeValue(scaling.raw.rope_type ?? scaling.raw.type)} is not supported; supported: default, linear, llama3, longrope`);
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
  const scaling = globalRopeParameters(fields);
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

  /** The object at `key`, for its own typed access. */
  child(key: string): ConfigFields {
    const raw = this.raw[key];
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) this.fail('INVALID_CONFIG', `${this.prefix}${key} must be an object or null, got ${describeValue(raw)}`);
    return new ConfigFields(raw as Record<string, unknown>, this.file, `${this.prefix}${key}.`);
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
