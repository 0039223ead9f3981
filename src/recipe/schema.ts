/**
 * The shape of recipe.yaml, in the file's own snake_case keys. Objects are strict (an unknown key is an
 * error, so a typo never silently falls back to a default), and every default lives here so that the
 * published JSON Schema shows it. Relations between fields and file checks live in checks.ts.
 *
 * Secrets are never values in a recipe: a key that needs one ends in `_env` and holds the name of an
 * environment variable (see `envVarName`), read by the stage that uses it. So the resolved recipe written
 * to a run directory can never leak a secret.
 */
import { z } from 'zod';

export const BACKENDS = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export const SCHEDULES = ['cosine', 'linear', 'constant'] as const;
export const DATA_FORMATS = ['auto', 'text', 'prompt_response'] as const;

const positiveInt = () => z.int().positive();
const nonNegativeInt = () => z.int().nonnegative();
const path = () => z.string().min(1);

/** For `*_env` keys: the name of an environment variable, never its value. */
export const envVarName = () =>
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected the name of an environment variable, like OPENAI_API_KEY');

const ropeScaling = z
  .strictObject({
    rope_type: z.literal('llama3'),
    factor: z.number().positive(),
    low_freq_factor: z.number().positive(),
    high_freq_factor: z.number().positive(),
    original_max_position_embeddings: positiveInt(),
  })
  .describe('Llama 3.x frequency-dependent RoPE scaling');

const architecture = z
  .strictObject({
    hidden_size: positiveInt(),
    intermediate_size: positiveInt(),
    num_layers: positiveInt(),
    num_heads: positiveInt(),
    num_kv_heads: positiveInt().optional().describe('key/value heads for grouped-query attention [num_heads]'),
    head_dim: positiveInt().optional().describe('[hidden_size / num_heads]'),
    rope_theta: z.number().positive().default(10000),
    rope_scaling: ropeScaling.nullable().default(null),
    attention_bias: z.boolean().default(false).describe('biases on the q/k/v projections (Qwen2 style)'),
    tie_word_embeddings: z.boolean().default(true),
    max_position_embeddings: positiveInt().default(2048),
    rms_norm_eps: z.number().positive().default(1e-5),
  })
  // Defaults that depend on sibling fields; checks.ts verifies that the results are valid.
  .transform((a) => ({
    ...a,
    num_kv_heads: a.num_kv_heads ?? a.num_heads,
    head_dim: a.head_dim ?? a.hidden_size / a.num_heads,
  }));

const scratchStudent = z.strictObject({
  type: z.literal('scratch').describe('a new model with random weights'),
  tokenizer: path()
    .default('byte')
    .describe('"byte" (256 byte ids plus specials), or a tokenizer.json file or a folder holding one'),
  architecture,
  init_std: z.number().positive().default(0.02).describe('standard deviation of the random initial weights'),
});

export const LORA_TARGET_NAMES = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;

const loraStudent = z.strictObject({
  type: z.literal('lora').describe('low-rank adapters on a frozen pretrained model'),
  base: path().describe('a Hugging Face model folder, a .gguf file, or ollama:NAME[:TAG]'),
  rank: positiveInt().default(16).describe('higher: more capacity, more memory and time'),
  alpha: z.number().positive().default(32).describe('updates are scaled by alpha / rank (alpha / sqrt(rank) with rslora)'),
  dropout: z.number().min(0).lt(1).default(0).describe('dropout on the adapter input while training'),
  targets: z
    .union([z.literal('all-linear'), z.array(z.enum(LORA_TARGET_NAMES)).min(1)])
    .default(['q', 'k', 'v', 'o'])
    .describe('projections to adapt; all-linear: q k v o gate up down'),
  rslora: z.boolean().default(false).describe('rank-stabilized scaling, alpha / sqrt(rank)'),
});

// One variant per student kind, told apart by `type`.
const student = z.discriminatedUnion('type', [scratchStudent, loraStudent]);

const validation = z
  .strictObject({
    fraction: z.number().gt(0).lt(1).optional().describe('share of the training file held out [0.05]'),
    path: path().optional().describe('a separate JSONL file'),
  })
  .describe('either { fraction } or { path }')
  .refine((v) => v.fraction === undefined || v.path === undefined, 'either { fraction } or { path }, not both')
  .transform((v): { fraction: number } | { path: string } =>
    v.path !== undefined ? { path: v.path } : { fraction: v.fraction ?? 0.05 },
  );

const data = z.strictObject({
  train: path().describe('JSONL file, one example per line'),
  format: z.enum(DATA_FORMATS).default('auto').describe('auto: decided from the fields the lines hold'),
  text_field: z.string().min(1).default('text'),
  prompt_field: z.string().min(1).default('prompt'),
  response_field: z.string().min(1).default('response'),
  validation: validation.default({ fraction: 0.05 }),
  seq_len: positiveInt().default(256).describe('tokens per training sequence'),
});

const train = z.strictObject({
  max_steps: positiveInt().describe('optimizer steps'),
  batch_size: positiveInt().default(8).describe('sequences per micro-batch; higher: faster, more memory'),
  grad_accum: positiveInt().default(1).describe('micro-batches per optimizer step'),
  lr: z.number().positive().default(3e-4).describe('peak learning rate'),
  min_lr_ratio: z.number().min(0).max(1).default(0.1).describe('final learning rate as a share of lr'),
  warmup_steps: nonNegativeInt().default(0),
  schedule: z.enum(SCHEDULES).default('cosine'),
  weight_decay: z.number().nonnegative().default(0.01),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.95]),
  eps: z.number().positive().default(1e-8),
  clip_grad_norm: z.number().positive().nullable().default(1.0).describe('null: no clipping'),
  eval_every: positiveInt().default(100),
  eval_batches: positiveInt().default(8),
  checkpoint_every: positiveInt().default(100),
  keep_checkpoints: positiveInt().default(2),
  log_every: positiveInt().default(10),
  resume: z.enum(['auto', 'never']).default('auto').describe('auto: continue from the latest checkpoint'),
});

export const recipeSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected a folder name: letters, digits, ".", "_", "-"')
      .describe('run name; the run folder is <output_dir>/<name>'),
    seed: nonNegativeInt().default(0),
    backend: z.enum(BACKENDS).default('auto').describe('tfjs backend; auto picks the fastest available'),
    output_dir: path()
      .optional()
      .describe('parent of the run folder, relative to this file [runs, relative to the working directory]'),
    student,
    data,
    train,
  })
  .describe('slm-train recipe');

/** The recipe as validated, before paths are resolved and keys are camelCased. */
export type RecipeYaml = z.output<typeof recipeSchema>;
export type Backend = (typeof BACKENDS)[number];
