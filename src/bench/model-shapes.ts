/**
 * The published config.json of the small models people adapt, and Hugging Face folders with their exact
 * shapes and random weights (stored BF16, as the hub stores them), made here: no weights are downloaded.
 * `layers` cuts a model to its first layers while keeping every per-layer shape and the full embedding.
 */
import { writeHfModelDir } from '../model-files/hf-model-dir.ts';
import type { HostTensor } from '../formats/safetensors.ts';
import { withLayers, type ModelConfig } from '../model/config.ts';
import { modelConfigFromHf } from '../model-files/hf-config.ts';
import { parameterSpecs } from '../model/parameters.ts';
import { createByteLevelTokenizer } from '../tokenizer/byte-level.ts';

const LLAMA_3_2_COMMON = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  bos_token_id: 128000,
  eos_token_id: 128001,
  hidden_act: 'silu',
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  vocab_size: 128256,
};

/** config.json as published on the Hugging Face hub. */
export const PUBLISHED_CONFIGS = {
  'qwen2.5-0.5b': {
    architectures: ['Qwen2ForCausalLM'],
    bos_token_id: 151643,
    eos_token_id: 151643,
    hidden_act: 'silu',
    hidden_size: 896,
    initializer_range: 0.02,
    intermediate_size: 4864,
    max_position_embeddings: 32768,
    max_window_layers: 24,
    model_type: 'qwen2',
    num_attention_heads: 14,
    num_hidden_layers: 24,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    sliding_window: 32768,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    use_sliding_window: false,
    vocab_size: 151936,
  },
  'llama3.2-1b': { ...LLAMA_3_2_COMMON, head_dim: 64, hidden_size: 2048, num_attention_heads: 32, num_hidden_layers: 16 },
  'llama3.2-3b': { ...LLAMA_3_2_COMMON, head_dim: 128, hidden_size: 3072, num_attention_heads: 24, num_hidden_layers: 28 },
  'gemma2-2b': {
    architectures: ['Gemma2ForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    attn_logit_softcapping: 50.0,
    bos_token_id: 2,
    cache_implementation: 'hybrid',
    eos_token_id: 1,
    final_logit_softcapping: 30.0,
    head_dim: 256,
    hidden_act: 'gelu_pytorch_tanh',
    hidden_activation: 'gelu_pytorch_tanh',
    hidden_size: 2304,
    initializer_range: 0.02,
    intermediate_size: 9216,
    max_position_embeddings: 8192,
    model_type: 'gemma2',
    num_attention_heads: 8,
    num_hidden_layers: 26,
    num_key_value_heads: 4,
    pad_token_id: 0,
    query_pre_attn_scalar: 256,
    rms_norm_eps: 1e-6,
    rope_theta: 10000.0,
    sliding_window: 4096,
    torch_dtype: 'float32',
    vocab_size: 256000,
  },
  'gemma3-1b': {
    architectures: ['Gemma3ForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    attn_logit_softcapping: null,
    bos_token_id: 2,
    cache_implementation: 'hybrid',
    eos_token_id: [1, 106],
    final_logit_softcapping: null,
    head_dim: 256,
    hidden_activation: 'gelu_pytorch_tanh',
    hidden_size: 1152,
    initializer_range: 0.02,
    intermediate_size: 6912,
    max_position_embeddings: 32768,
    model_type: 'gemma3_text',
    num_attention_heads: 4,
    num_hidden_layers: 26,
    num_key_value_heads: 1,
    pad_token_id: 0,
    query_pre_attn_scalar: 256,
    rms_norm_eps: 1e-6,
    rope_local_base_freq: 10000,
    rope_scaling: null,
    rope_theta: 1000000,
    sliding_window: 512,
    sliding_window_pattern: 6,
    torch_dtype: 'bfloat16',
    use_cache: true,
    vocab_size: 262144,
  },
} as const satisfies Record<string, Record<string, unknown>>;

export type ModelShape = keyof typeof PUBLISHED_CONFIGS;
export const MODEL_SHAPES = Object.keys(PUBLISHED_CONFIGS) as ModelShape[];

/** The config of a published shape, optionally cut to its first `layers` layers. */
export function shapeConfig(shape: ModelShape, layers?: number): ModelConfig {
  const config = modelConfigFromHf({ ...PUBLISHED_CONFIGS[shape] }, `${shape}/config.json`);
  return layers === undefined ? config : withLayers(config, layers);
}

/**
 * Writes a model folder of `config`'s shape with random BF16 weights (uniform, std 0.02; Llama norms 1) and the
 * byte-level tokenizer, one tensor at a time. The same seed gives the same folder.
 */
export async function writeRandomModel(dir: string, config: ModelConfig, seed = 0): Promise<void> {
  await writeHfModelDir(dir, {
    config,
    tensors: randomTensors(config, seed),
    dtype: 'BF16',
    tokenizerJson: createByteLevelTokenizer().toJSON(),
  });
}

function* randomTensors(config: ModelConfig, seed: number): Generator<HostTensor> {
  let state = (seed ^ 0x9e3779b9) >>> 0 || 1;
  for (const spec of parameterSpecs(config)) {
    const data = new Float32Array(spec.hfShape.reduce((a, b) => a * b, 1));
    if (spec.init === 'ones') data.fill(1);
    else {
      // Uniform with the standard deviation 0.02 of HF's initializer (xorshift32: fast enough for 3B values).
      const scale = (0.02 * Math.sqrt(12)) / 2 ** 32;
      for (let i = 0; i < data.length; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        data[i] = ((state >>> 0) - 2 ** 31) * scale;
      }
    }
    yield { name: spec.name, shape: spec.hfShape, data };
  }
}
