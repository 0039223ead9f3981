import { describe, expect, it } from 'vitest';
import { PUBLISHED_CONFIGS } from '../../src/bench/model-shapes.ts';
import { HfModelDirError, hfConfigJson, modelConfigFromHf } from '../../src/model-files/hf-config.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import type { ModelConfig } from '../../src/model/config.ts';

const FILE = '/models/x/config.json';

/** Llama 3.2 1B Instruct's config.json: the base model's, with the chat turn ends among the EOS ids. */
const llama32 = { ...PUBLISHED_CONFIGS['llama3.2-1b'], eos_token_id: [128001, 128008, 128009] };

/** Qwen2.5 0.5B's config.json. */
const qwen25 = PUBLISHED_CONFIGS['qwen2.5-0.5b'];

/** Phi-3-mini-4k-instruct's config.json, with sliding_window raised to the context (its 2047 is refused below). */
const phi3 = {
  architectures: ['Phi3ForCausalLM'],
  bos_token_id: 1,
  eos_token_id: 32000,
  hidden_act: 'silu',
  hidden_size: 3072,
  intermediate_size: 8192,
  max_position_embeddings: 4096,
  model_type: 'phi3',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 32,
  original_max_position_embeddings: 4096,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  vocab_size: 32064,
};

function errorOf(run: () => unknown): HfModelDirError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(HfModelDirError);
    return error as HfModelDirError;
  }
  throw new Error('expected an error');
}

describe('modelConfigFromHf', () => {
  it('maps a Llama 3.2 config: the first of several eos ids as eos, all of them as stop ids', () => {
    expect(modelConfigFromHf(llama32, FILE)).toEqual({
      modelType: 'llama',
      vocabSize: 128256,
      hiddenSize: 2048,
      intermediateSize: 8192,
      numLayers: 16,
      numHeads: 32,
      numKvHeads: 8,
      headDim: 64,
      rmsNormEps: 1e-5,
      ropeTheta: 500000,
      ropeScaling: { ropeType: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
      maxPositionEmbeddings: 131072,
      attentionBias: false,
      qkNorm: false,
      tieWordEmbeddings: true,
      bosTokenId: 128000,
      eosTokenId: 128001,
      longRope: null,
      rotaryDim: 64,
      slidingWindow: null,
      layerTypes: Array(16).fill('full'),
      localRopeTheta: null,
      hiddenActivation: 'silu',
      normWeightOffset: 0,
      embeddingScale: 1,
      sandwichNorms: false,
      queryPreAttnScalar: 64,
      attnLogitSoftcap: null,
      finalLogitSoftcap: null,
      stopTokenIds: [128001, 128008, 128009],
    });
  });

  it('gives qwen2 attention biases and derives head_dim when absent', () => {
    const config = modelConfigFromHf(qwen25, FILE);
    expect(config.attentionBias).toBe(true);
    expect(config.headDim).toBe(64);
    expect(config.ropeScaling).toBeNull();
  });

  it('reads the older rope_scaling spelling "type" and treats "default" as none', () => {
    const older = { ...llama32, rope_scaling: { ...llama32.rope_scaling, rope_type: undefined, type: 'llama3' } };
    expect(modelConfigFromHf(older, FILE).ropeScaling?.factor).toBe(32);
    expect(modelConfigFromHf({ ...llama32, rope_scaling: { rope_type: 'default' } }, FILE).ropeScaling).toBeNull();
  });

  it('reads the rope_parameters that transformers 5 writes instead of rope_theta and rope_scaling', () => {
    const { rope_theta: _, rope_scaling: scaling, ...rest } = llama32;
    const v5 = { ...rest, rope_parameters: { ...scaling, rope_theta: 500000.0 } };
    expect(modelConfigFromHf(v5, FILE)).toEqual(modelConfigFromHf(llama32, FILE));
    const { rope_theta: __, ...qwenRest } = qwen25;
    const qwenV5 = { ...qwenRest, rope_parameters: { rope_type: 'default', rope_theta: 1000000.0 } };
    expect(modelConfigFromHf(qwenV5, FILE)).toEqual(modelConfigFromHf(qwen25, FILE));
  });

  it('uses transformers defaults for keys older configs leave out', () => {
    const minimal = { model_type: 'llama', vocab_size: 32, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 2 };
    expect(modelConfigFromHf(minimal, FILE)).toMatchObject({
      numKvHeads: 2,
      headDim: 8,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      tieWordEmbeddings: false,
      bosTokenId: null,
      eosTokenId: null,
    });
  });

  it("takes the windows of Phi-3-mini-4k (2047, every layer), Mistral 7B v0.1 (4096) and Qwen2 (from max_window_layers)", () => {
    const sliding = (count: number) => Array(count).fill('sliding');
    expect(modelConfigFromHf({ ...phi3, sliding_window: 2047 }, FILE)).toMatchObject({ slidingWindow: 2047, layerTypes: sliding(phi3.num_hidden_layers) });
    expect(modelConfigFromHf({ ...qwen25, model_type: 'mistral', sliding_window: 4096 }, FILE)).toMatchObject({ slidingWindow: 4096, layerTypes: sliding(qwen25.num_hidden_layers) });
    const qwen = modelConfigFromHf({ ...qwen25, use_sliding_window: true, sliding_window: 4096, max_window_layers: 20 }, FILE);
    expect(qwen).toMatchObject({ slidingWindow: 4096, layerTypes: [...Array(20).fill('full'), ...sliding(qwen25.num_hidden_layers - 20)] });
  });

  it('accepts mistral without a sliding window or with one as long as the context', () => {
    const mistral = { ...qwen25, model_type: 'mistral', sliding_window: null, use_sliding_window: undefined };
    expect(modelConfigFromHf(mistral, FILE).attentionBias).toBe(false);
    expect(modelConfigFromHf({ ...mistral, sliding_window: 32768 }, FILE).modelType).toBe('mistral');
  });

  it('reads phi3 as the llama it is once its fused projections are split', () => {
    expect(modelConfigFromHf(phi3, FILE)).toEqual(
      resolveModelConfig({
        modelType: 'llama',
        vocabSize: 32064,
        hiddenSize: 3072,
        intermediateSize: 8192,
        numLayers: 32,
        numHeads: 32,
        numKvHeads: 32,
        headDim: 96,
        rmsNormEps: 1e-5,
        ropeTheta: 10000,
        maxPositionEmbeddings: 4096,
        bosTokenId: 1,
        eosTokenId: 32000,
      }),
    );
    expect(modelConfigFromHf({ ...phi3, sliding_window: null }, FILE).modelType).toBe('llama');
  });

  it.each([
    ['longrope factors of the wrong length', { ...phi3, rope_scaling: { type: 'longrope', short_factor: [1], long_factor: [2] } }, 'INVALID_CONFIG', 'rope_scaling.short_factor must list 48 positive numbers'],
    ['a partial_rotary_factor above 1', { ...phi3, partial_rotary_factor: 1.5 }, 'INVALID_CONFIG', 'partial_rotary_factor must be in (0, 1]'],
    ['phi3 yarn scaling', { ...phi3, rope_scaling: { type: 'yarn', factor: 4 } }, 'UNSUPPORTED', 'rope_type "yarn" is not supported'],
    ['an unsupported model_type', { ...llama32, model_type: 'gpt_neox' }, 'UNSUPPORTED', "model_type 'gpt_neox' is not supported yet; supported: llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3_text, phi3, gemma3"],
    ['a missing model_type', { ...llama32, model_type: undefined }, 'INVALID_CONFIG', 'model_type must be a string'],
    ['a missing hidden_size', { ...llama32, hidden_size: undefined }, 'INVALID_CONFIG', 'hidden_size is required'],
    ['a non-integer layer count', { ...llama32, num_hidden_layers: '16' }, 'INVALID_CONFIG', 'num_hidden_layers must be a positive integer, got "16"'],
    ['a negative rms_norm_eps', { ...llama32, rms_norm_eps: -1 }, 'INVALID_CONFIG', 'rms_norm_eps must be a positive number'],
    ['a llama3 scaling without its factor', { ...llama32, rope_scaling: { rope_type: 'llama3' } }, 'INVALID_CONFIG', 'rope_scaling.factor is required'],
    ['yarn rope scaling', { ...qwen25, rope_scaling: { type: 'yarn', factor: 4 } }, 'UNSUPPORTED', 'rope_scaling.rope_type "yarn" is not supported'],
    ['llama attention biases', { ...llama32, attention_bias: true }, 'UNSUPPORTED', 'attention_bias true is not supported'],
    ['a gelu activation', { ...llama32, hidden_act: 'gelu' }, 'UNSUPPORTED', 'hidden_act "gelu" is not supported'],
    ['heads not divisible by kv heads', { ...llama32, num_key_value_heads: 5 }, 'INVALID_CONFIG', 'must be a multiple of numKvHeads (5)'],
    ['an odd head_dim', { ...llama32, head_dim: 63 }, 'INVALID_CONFIG', 'headDim must be a positive even integer'],
  ])('refuses %s by name', (_, raw, code, message) => {
    const error = errorOf(() => modelConfigFromHf(raw as Record<string, unknown>, FILE));
    expect(error.code).toBe(code);
    expect(error.message).toContain(message);
    expect(error.message.startsWith(`${FILE}: `)).toBe(true);
  });
});

describe('hfConfigJson', () => {
  const configs: ModelConfig[] = [
    modelConfigFromHf(llama32, FILE),
    modelConfigFromHf(qwen25, FILE),
    resolveModelConfig({ modelType: 'mistral', vocabSize: 100, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 1, headDim: 16, eosTokenId: 2 }),
  ];

  it.each(configs.map((c) => [c.modelType, c] as const))('round-trips a %s config', (_, config) => {
    expect(modelConfigFromHf(hfConfigJson(config), FILE)).toEqual(config);
  });

  it('names the architecture and dtype transformers needs', () => {
    const json = hfConfigJson(configs[1], 'BF16');
    expect(json).toMatchObject({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', torch_dtype: 'bfloat16', use_sliding_window: false });
    expect(hfConfigJson(configs[0])).toMatchObject({ architectures: ['LlamaForCausalLM'], torch_dtype: 'float32', attention_bias: false });
    expect(hfConfigJson(configs[2], 'F16')).toMatchObject({ architectures: ['MistralForCausalLM'], sliding_window: null, torch_dtype: 'float16' });
    expect(hfConfigJson(configs[0]).rope_scaling).toEqual(llama32.rope_scaling);
  });

  it('refuses configs transformers would load differently', () => {
    expect(errorOf(() => hfConfigJson({ ...configs[1], attentionBias: false })).message).toContain('qwen2 always has q/k/v biases');
    expect(errorOf(() => hfConfigJson({ ...configs[0], attentionBias: true })).code).toBe('UNSUPPORTED');
    expect(errorOf(() => hfConfigJson({ ...configs[0], modelType: 'phi3' })).message).toContain("model_type 'phi3' cannot be exported");
  });
});
