/**
 * GGUF constants, after ggml `docs/gguf.md`, `ggml/src/ggml-common.h` and llama.cpp `gguf-py/gguf/constants.py`.
 * This module imports nothing of the project, so anything may depend on it.
 */

/** "GGUF" as bytes; read as a little-endian u32 it is 0x46554747. */
export const GGUF_MAGIC = 0x46554747;
export const GGUF_MAGIC_BYTES = [0x47, 0x47, 0x55, 0x46] as const;
/** v1 had 32-bit counts and lengths; v2 made them 64-bit; v3 only added big-endian files, same layout. */
export const GGUF_VERSION = 3;
export const GGUF_READABLE_VERSIONS = [2, 3] as const;
export type GgufVersion = (typeof GGUF_READABLE_VERSIONS)[number];
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** GGML_QNT_VERSION: required in `general.quantization_version` when any tensor is quantized. */
export const GGML_QUANT_VERSION = 2;
/** GGML_MAX_DIMS. */
export const GGML_MAX_DIMS = 4;
/** GGML_MAX_NAME is 64 bytes including the terminating NUL. */
export const GGML_MAX_TENSOR_NAME_BYTES = 63;
/** The spec's limit on metadata keys. */
export const GGUF_MAX_KEY_BYTES = 65535;

/** Metadata value types (gguf_metadata_value_type). */
export const GGUF_VALUE_TYPE = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufValueTypeName = keyof typeof GGUF_VALUE_TYPE;

/** Bytes of each fixed-size value type; strings and arrays have their own length prefixes. */
export const GGUF_VALUE_BYTES = {
  UINT8: 1,
  INT8: 1,
  UINT16: 2,
  INT16: 2,
  UINT32: 4,
  INT32: 4,
  FLOAT32: 4,
  BOOL: 1,
  UINT64: 8,
  INT64: 8,
  FLOAT64: 8,
} as const satisfies Partial<Record<GgufValueTypeName, number>>;

/** Tensor types (enum ggml_type). Gaps are ids whose support was removed from GGUF files. */
export const GGML_TYPE = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
  NVFP4: 40,
  Q1_0: 41,
} as const;
export type GgmlTypeName = keyof typeof GGML_TYPE;

/** Values per super-block of the K-quants. */
export const QK_K = 256;

export interface GgmlBlockLayout {
  /** Values per block. */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

/** Block layouts, written as the sums of the block struct fields (f16 scales are 2 bytes). */
export const GGML_BLOCK_LAYOUT: Record<GgmlTypeName, GgmlBlockLayout> = {
  F32: { blockSize: 1, typeSize: 4 },
  F16: { blockSize: 1, typeSize: 2 },
  Q4_0: { blockSize: 32, typeSize: 2 + 16 },
  Q4_1: { blockSize: 32, typeSize: 2 + 2 + 16 },
  Q5_0: { blockSize: 32, typeSize: 2 + 4 + 16 },
  Q5_1: { blockSize: 32, typeSize: 2 + 2 + 4 + 16 },
  Q8_0: { blockSize: 32, typeSize: 2 + 32 },
  Q8_1: { blockSize: 32, typeSize: 4 + 4 + 32 },
  Q2_K: { blockSize: QK_K, typeSize: 2 + 2 + QK_K / 16 + QK_K / 4 },
  Q3_K: { blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 8 + 12 },
  Q4_K: { blockSize: QK_K, typeSize: 2 + 2 + QK_K / 2 + 12 },
  Q5_K: { blockSize: QK_K, typeSize: 2 + 2 + QK_K / 2 + QK_K / 8 + 12 },
  Q6_K: { blockSize: QK_K, typeSize: 2 + QK_K / 2 + QK_K / 4 + QK_K / 16 },
  Q8_K: { blockSize: QK_K, typeSize: 4 + QK_K + QK_K / 8 },
  IQ2_XXS: { blockSize: QK_K, typeSize: 2 + QK_K / 4 },
  IQ2_XS: { blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 32 },
  IQ3_XXS: { blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 8 },
  IQ1_S: { blockSize: QK_K, typeSize: 2 + QK_K / 8 + QK_K / 16 },
  IQ4_NL: { blockSize: 32, typeSize: 2 + 16 },
  IQ3_S: { blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4 },
  IQ2_S: { blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 16 },
  IQ4_XS: { blockSize: QK_K, typeSize: 2 + 2 + QK_K / 2 + QK_K / 64 },
  I8: { blockSize: 1, typeSize: 1 },
  I16: { blockSize: 1, typeSize: 2 },
  I32: { blockSize: 1, typeSize: 4 },
  I64: { blockSize: 1, typeSize: 8 },
  F64: { blockSize: 1, typeSize: 8 },
  IQ1_M: { blockSize: QK_K, typeSize: QK_K / 8 + QK_K / 16 + QK_K / 32 },
  BF16: { blockSize: 1, typeSize: 2 },
  TQ1_0: { blockSize: QK_K, typeSize: 2 + 4 * 13 },
  TQ2_0: { blockSize: QK_K, typeSize: 2 + 64 },
  MXFP4: { blockSize: 32, typeSize: 1 + 16 },
  NVFP4: { blockSize: 64, typeSize: 4 + 32 },
  Q1_0: { blockSize: 128, typeSize: 2 + 16 },
};

const TYPE_NAME_BY_ID = new Map<number, GgmlTypeName>(
  Object.entries(GGML_TYPE).map(([name, id]) => [id, name as GgmlTypeName]),
);

/** The name of a GGML type id, or undefined for an id GGUF files cannot hold. */
export function ggmlTypeName(id: number): GgmlTypeName | undefined {
  return TYPE_NAME_BY_ID.get(id);
}

const VALUE_TYPE_NAME_BY_ID = new Map<number, GgufValueTypeName>(
  Object.entries(GGUF_VALUE_TYPE).map(([name, id]) => [id, name as GgufValueTypeName]),
);

export function ggufValueTypeName(id: number): GgufValueTypeName | undefined {
  return VALUE_TYPE_NAME_BY_ID.get(id);
}

/** Well-known metadata keys; `{arch}` stands for the value of `general.architecture` (see `archKey`). */
export const GGUF_KEY = {
  GENERAL_ARCHITECTURE: 'general.architecture',
  GENERAL_TYPE: 'general.type',
  GENERAL_NAME: 'general.name',
  GENERAL_QUANTIZATION_VERSION: 'general.quantization_version',
  GENERAL_ALIGNMENT: 'general.alignment',
  GENERAL_FILE_TYPE: 'general.file_type',

  CONTEXT_LENGTH: '{arch}.context_length',
  EMBEDDING_LENGTH: '{arch}.embedding_length',
  BLOCK_COUNT: '{arch}.block_count',
  FEED_FORWARD_LENGTH: '{arch}.feed_forward_length',
  VOCAB_SIZE: '{arch}.vocab_size',
  ATTENTION_HEAD_COUNT: '{arch}.attention.head_count',
  ATTENTION_HEAD_COUNT_KV: '{arch}.attention.head_count_kv',
  ATTENTION_KEY_LENGTH: '{arch}.attention.key_length',
  ATTENTION_VALUE_LENGTH: '{arch}.attention.value_length',
  ATTENTION_LAYERNORM_RMS_EPS: '{arch}.attention.layer_norm_rms_epsilon',
  ROPE_DIMENSION_COUNT: '{arch}.rope.dimension_count',
  ROPE_FREQ_BASE: '{arch}.rope.freq_base',
  ROPE_SCALING_TYPE: '{arch}.rope.scaling.type',
  ROPE_SCALING_FACTOR: '{arch}.rope.scaling.factor',
  ROPE_SCALING_ORIGINAL_CONTEXT_LENGTH: '{arch}.rope.scaling.original_context_length',
  ROPE_FREQ_BASE_SWA: '{arch}.rope.freq_base_swa',
  ATTENTION_SLIDING_WINDOW: '{arch}.attention.sliding_window',
  ATTENTION_SLIDING_WINDOW_PATTERN: '{arch}.attention.sliding_window_pattern',
  ATTN_LOGIT_SOFTCAPPING: '{arch}.attn_logit_softcapping',
  FINAL_LOGIT_SOFTCAPPING: '{arch}.final_logit_softcapping',

  TOKENIZER_MODEL: 'tokenizer.ggml.model',
  TOKENIZER_PRE: 'tokenizer.ggml.pre',
  TOKENIZER_TOKENS: 'tokenizer.ggml.tokens',
  TOKENIZER_TOKEN_TYPE: 'tokenizer.ggml.token_type',
  TOKENIZER_SCORES: 'tokenizer.ggml.scores',
  TOKENIZER_MERGES: 'tokenizer.ggml.merges',
  TOKENIZER_BOS_ID: 'tokenizer.ggml.bos_token_id',
  TOKENIZER_EOS_ID: 'tokenizer.ggml.eos_token_id',
  TOKENIZER_EOT_ID: 'tokenizer.ggml.eot_token_id',
  TOKENIZER_EOM_ID: 'tokenizer.ggml.eom_token_id',
  TOKENIZER_UNK_ID: 'tokenizer.ggml.unknown_token_id',
  TOKENIZER_PAD_ID: 'tokenizer.ggml.padding_token_id',
  TOKENIZER_ADD_BOS: 'tokenizer.ggml.add_bos_token',
  TOKENIZER_ADD_EOS: 'tokenizer.ggml.add_eos_token',
  TOKENIZER_CHAT_TEMPLATE: 'tokenizer.chat_template',

  ADAPTER_TYPE: 'adapter.type',
  ADAPTER_LORA_ALPHA: 'adapter.lora.alpha',
} as const;

/** A `{arch}` key template filled in, e.g. `archKey(GGUF_KEY.BLOCK_COUNT, 'llama')` is `llama.block_count`. */
export function archKey(template: string, arch: string): string {
  return template.replaceAll('{arch}', arch);
}
