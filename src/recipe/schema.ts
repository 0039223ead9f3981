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

export const BACKENDS = ['auto', 'tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'] as const;
export const SCHEDULES = ['cosine', 'linear', 'constant'] as const;
export const DATA_FORMATS = ['auto', 'text', 'prompt_response', 'messages'] as const;

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
  base: path().describe('a Hugging Face model folder, a Hugging Face id in the Hub cache (org/name[@revision]), a .gguf file, or ollama:NAME[:TAG]'),
  rank: positiveInt().default(16).describe('higher: more capacity, more memory and time'),
  alpha: z.number().positive().default(32).describe('updates are scaled by alpha / rank (alpha / sqrt(rank) with rslora)'),
  dropout: z.number().min(0).lt(1).default(0).describe('dropout on the adapter input while training'),
  targets: z
    .union([z.literal('all-linear'), z.array(z.enum(LORA_TARGET_NAMES)).min(1)])
    .default(['q', 'k', 'v', 'o'])
    .describe('projections to adapt; all-linear: q k v o gate up down'),
  rslora: z.boolean().default(false).describe('rank-stabilized scaling, alpha / sqrt(rank)'),
  weights: z
    .enum(['auto', 'resident', 'streamed'])
    .default('auto')
    .describe('resident: the base as float32 in the backend (fastest); streamed: compact in host memory, each layer uploaded as it runs; auto: resident when it takes at most half the backend'),
});

const fullStudent = z.strictObject({
  type: z.literal('full').describe('every weight of a pretrained model trains, held as float32 in the backend (small models: the optimizer keeps two more copies)'),
  base: path().describe('a Hugging Face model folder, a Hugging Face id in the Hub cache (org/name[@revision]), a .gguf file, or ollama:NAME[:TAG]'),
});

// One variant per student kind, told apart by `type`.
const student = z.discriminatedUnion('type', [scratchStudent, loraStudent, fullStudent]);

const validation = z
  .strictObject({
    fraction: z.number().gt(0).lt(1).optional().describe('share of the training file held out [0.05]'),
    path: path().optional().describe('a separate JSONL, CSV, Parquet or Arrow file'),
  })
  .describe('either { fraction } or { path }')
  .refine((v) => v.fraction === undefined || v.path === undefined, 'either { fraction } or { path }, not both')
  .transform((v): { fraction: number } | { path: string } =>
    v.path !== undefined ? { path: v.path } : { fraction: v.fraction ?? 0.05 },
  );

const mixSource = z.strictObject({
  path: path().describe('a JSONL, CSV, Parquet or Arrow file'),
  weight: z.number().positive().default(1).describe('uses of each example per epoch: 2 repeats them, 0.5 takes half of them'),
  format: z.enum(DATA_FORMATS).optional().describe("this file's format [data.format]"),
  text_field: z.string().min(1).optional(),
  prompt_field: z.string().min(1).optional(),
  response_field: z.string().min(1).optional(),
  messages_field: z.string().min(1).optional(),
});

const data = z.strictObject({
  train: path().optional().describe('a JSONL, CSV, Parquet or Arrow file of examples; leave out to train on what `generate` wrote'),
  mix: z.array(mixSource).min(1).optional().describe('instead of train: several files, each with a weight and its own format settings'),
  format: z.enum(DATA_FORMATS).default('auto').describe('auto: decided from the fields the lines hold (messages or conversations, prompt and response, else text)'),
  text_field: z.string().min(1).default('text'),
  prompt_field: z.string().min(1).default('prompt'),
  response_field: z.string().min(1).default('response'),
  messages_field: z
    .string()
    .min(1)
    .nullable()
    .default(null)
    .describe('messages data (OpenAI {role, content} or ShareGPT {from, value} lists), rendered with the model\'s chat template, loss on assistant turns: the field [messages, else conversations]'),
  prompt_template: z
    .string()
    .min(1)
    .nullable()
    .default(null)
    .describe('prompt/response data: the prompt built from the record, e.g. "Question: {{question}}\\nAnswer:" [the prompt field]'),
  response_template: z.string().min(1).nullable().default(null).describe('likewise the response, e.g. " {{answer}}" [the response field]'),
  validation: validation.default({ fraction: 0.05 }),
  seq_len: positiveInt().default(256).describe('tokens per training sequence'),
});

export const TRAIN_OBJECTIVES = ['sft', 'dpo'] as const;

const train = z.strictObject({
  objective: z
    .enum(TRAIN_OBJECTIVES)
    .default('sft')
    .describe('sft: next-token loss on the data (with `distill`: from the teacher\'s distributions); dpo: preference pairs (prompt, chosen, rejected), see `dpo`'),
  max_steps: positiveInt().nullable().default(null).describe('optimizer steps; or give epochs'),
  epochs: z
    .number()
    .positive()
    .nullable()
    .default(null)
    .describe('passes over the training windows instead of max_steps (fractions allowed): steps = ceil(epochs x floor(ceil(windows / batch_size) / grad_accum))'),
  batch_size: positiveInt().default(8).describe('sequences per micro-batch (dpo: pairs, two sequences each); higher: faster, more memory'),
  grad_accum: positiveInt().default(1).describe('micro-batches per optimizer step'),
  recompute: z
    .union([z.literal('auto'), z.boolean()])
    .default('auto')
    .describe('recompute each layer in the backward pass instead of keeping its activations: less memory, one more forward pass; auto: when the memory plan needs it (always for a streamed base)'),
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
  resume: z
    .enum(['auto', 'never', 'force'])
    .default('auto')
    .describe('auto: continue from the latest intact checkpoint if it was trained under the same settings; force: even if not; never: start over'),
});

export const TEACHER_PROVIDERS = ['local', 'ollama', 'openai'] as const;
export const ANSWER_CHECKS = ['none', 'gsm8k', 'exact'] as const;

const teacher = z
  .strictObject({
    provider: z.enum(TEACHER_PROVIDERS).default('local').describe('local: a model loaded in this process'),
    model: z
      .string()
      .min(1)
      .describe('local: a Hugging Face folder or cached id, .gguf file or ollama:NAME[:TAG]; ollama: a model name; openai: a model id'),
    endpoints: z
      .array(z.url())
      .min(1)
      .optional()
      .describe('servers used round robin; ollama [http://127.0.0.1:11434], openai: base URLs ending in /v1 (required)'),
    api_key_env: envVarName().optional().describe('openai: the environment variable holding the API key'),
    recipe: path()
      .optional()
      .describe('local: a recipe whose run produces `model`; it runs first when `model` does not exist yet'),
    concurrency: positiveInt().default(4).describe('requests in flight at once, over all endpoints'),
    requests_per_minute: positiveInt().nullable().default(null).describe('null: no limit'),
    timeout_s: z.number().positive().default(300).describe('per request'),
    max_retries: nonNegativeInt().default(4).describe('on network errors, 429 and 5xx, with exponential backoff'),
  })
  .describe('the model whose knowledge is distilled');

const filters = z
  .strictObject({
    min_chars: nonNegativeInt().default(1).describe('shortest response kept'),
    max_chars: positiveInt().nullable().default(null),
    require: z.string().min(1).nullable().default(null).describe('a regular expression the response must match'),
    reject: z.string().min(1).nullable().default(null).describe('a regular expression the response must not match'),
    drop_truncated: z.boolean().default(true).describe('drop responses cut off by max_tokens'),
    answer: z
      .enum(ANSWER_CHECKS)
      .default('none')
      .describe('keep only responses whose answer equals the reference: gsm8k (final number) or exact (whole text)'),
  })
  .describe('which teacher responses are kept');

const generate = z
  .strictObject({
    mode: z
      .enum(['generate', 'label', 'preference'])
      .default('generate')
      .describe('generate: the teacher answers the prompts; label: the teacher scores the responses in the prompts file (local teacher); preference: pairs of its answers, chosen and rejected by filters.answer, else by its own log-probabilities (for train.objective dpo)'),
    prompts: z
      .union([path(), z.array(z.string().min(1)).min(1)])
      .describe('a JSONL, CSV, Parquet or Arrow file of records, or a list of prompts'),
    prompt_field: z.string().min(1).default('prompt'),
    response_field: z.string().min(1).default('response').describe('label mode: the response to score'),
    reference_field: z.string().min(1).nullable().default(null).describe('the reference answer for filters.answer'),
    template: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('the prompt sent, with {{field}} replaced by the record\'s fields [{{prompt_field}}]'),
    system: z.string().min(1).nullable().default(null).describe('a system prompt for every request'),
    limit: positiveInt().nullable().default(null).describe('use the first N prompts'),
    samples_per_prompt: positiveInt().default(1),
    temperature: z.number().min(0).default(0.7).describe('sampling temperature; 0: greedy'),
    max_tokens: positiveInt().default(256).describe('longest response'),
    k: z.int().min(0).max(20).default(20).describe('soft labels per response token; 0: text only'),
    tail: z
      .enum(['bucket', 'renormalize'])
      .default('bucket')
      .describe('the probability outside the top k: one extra bucket, or renormalized away'),
    dedup: z.boolean().default(true).describe('drop a response identical to an earlier one for the same prompt'),
    filters: filters.prefault({}),
    shard_rows: positiveInt().default(4096).describe('examples per Arrow shard'),
  })
  .describe('synthetic data and soft labels from the teacher, stored in <run>/data/');

export const DIVERGENCES = ['forward_kl', 'reverse_kl', 'jsd'] as const;

const onPolicy = z
  .strictObject({
    lambda: z.number().min(0).max(1).default(0).describe('share of batches the student samples itself (GKD); 0: off'),
    max_tokens: positiveInt().default(64).describe('longest response the student samples'),
    temperature: z.number().min(0).default(1).describe('the student\'s sampling temperature'),
  })
  .describe('on-policy distillation: the local teacher scores responses the student samples');

const distill = z
  .strictObject({
    alpha: z.number().min(0).max(1).default(0.5).describe('loss = (1 - alpha) * CE + alpha * T^2 * divergence'),
    temperature: z.number().positive().default(1).describe('softens both distributions; higher: more of the teacher\'s tail'),
    divergence: z.enum(DIVERGENCES).default('forward_kl').describe('forward_kl: KL(teacher || student); jsd: generalized JSD with beta'),
    beta: z.number().min(0).max(1).default(0.5).describe('jsd: mixture weight of the teacher (0: forward KL, 1: reverse KL)'),
    tail: z
      .enum(['bucket', 'renormalize'])
      .nullable()
      .default(null)
      .describe('top-k soft labels: the mass outside the k ids as one bucket, or renormalized away [the data\'s]'),
    labels: z
      .enum(['auto', 'stored', 'online', 'sequence'])
      .default('auto')
      .describe('stored: top-k from the generated data; online: the local teacher\'s full distribution at every step; sequence: CE on the teacher\'s text; auto: stored, else online, else sequence'),
    rows_per_chunk: positiveInt().default(256).describe('online: positions per chunk of the full-vocabulary loss (the teacher\'s logits are made this many rows at a time)'),
    vocab_per_chunk: positiveInt().default(8192).describe('online, streamed student heads: vocabulary entries per chunk of both models\' logits'),
    on_policy: onPolicy.prefault({}),
    compare_ce: z
      .boolean()
      .default(false)
      .describe('also train the same student with cross-entropy alone on the same data (into ce-baseline/), to compare'),
  })
  .describe('knowledge distillation: how the student learns from the teacher\'s distributions');

export const DPO_LOSSES = ['sigmoid', 'sigmoid_norm', 'ipo'] as const;

const dpo = z
  .strictObject({
    loss: z
      .enum(DPO_LOSSES)
      .default('sigmoid')
      .describe('sigmoid: DPO (cDPO with label_smoothing); sigmoid_norm: on per-token mean log-probabilities; ipo: IPO'),
    beta: z.number().positive().default(0.1).describe('how far the student may move from the reference; lower: further'),
    label_smoothing: z.number().min(0).lt(0.5).default(0).describe('sigmoid losses: the share of pairs assumed flipped (cDPO)'),
    rpo_alpha: z
      .number()
      .positive()
      .nullable()
      .default(null)
      .describe('RPO: adds rpo_alpha x the cross-entropy of the chosen completions, which keeps DPO from lowering their likelihood too (pairs that differ in a few tokens, as worked answers do); null: none'),
    reference: path()
      .nullable()
      .default(null)
      .describe('the model the student is kept near: a model folder, cached id, .gguf, ollama:NAME or run; null: the student as training starts (a LoRA student\'s base without its adapter)'),
  })
  .describe('preference tuning (train.objective: dpo): the loss, and the reference its log-probabilities are compared with, computed once and cached in the run folder');

/** The `dpo` section a recipe with train.objective dpo gets when it has none (resolve.ts fills it in). */
export const dpoDefaults = (): RecipeYaml['dpo'] & {} => dpo.parse({});

export const EVAL_TARGETS = ['student', 'teacher', 'base', 'ce_baseline'] as const;
export const EXPORT_FORMATS = ['hf', 'peft', 'gguf', 'gguf:f32', 'gguf:f16', 'gguf:q8_0', 'gguf:q4_0', 'gguf:q6_k', 'gguf:q5_k_m', 'gguf:q4_k_m', 'gguf-lora', 'ollama'] as const;

const exportSection = z
  .strictObject({
    formats: z.array(z.enum(EXPORT_FORMATS)).min(1).describe('written to <run>/export/<format>/ after training'),
  })
  .describe('exports of the trained student (also: slm-train export)');

const evalSuite = z
  .strictObject({
    suite: z.enum(['gsm8k', 'mmlu', 'custom']),
    data: path().optional().describe('gsm8k: the test JSONL; mmlu: a folder (dev/ val/ test/) or a file'),
    fewshot_data: path().optional().describe('gsm8k: problems the shots are drawn from (the train split)'),
    path: path().optional().describe('custom: the suite\'s YAML file'),
    style: z.enum(['5-shot', 'cot-8-shot', 'zero-shot', 'chat']).optional().describe('gsm8k prompt style [5-shot]'),
    mode: z.enum(['loglikelihood', 'generate']).optional().describe('mmlu: score choices, or generate a letter [loglikelihood]'),
    shots: nonNegativeInt().optional(),
    limit: positiveInt().nullable().default(null).describe('documents (mmlu: per subject); null: all'),
  })
  .describe('one evaluation suite');

const evaluation = z
  .strictObject({
    suites: z.array(evalSuite).min(1),
    targets: z
      .array(z.enum(EVAL_TARGETS))
      .min(1)
      .default(['student'])
      .describe('student: final/; teacher; base: a LoRA student\'s base; ce_baseline: the CE-only student of distill.compare_ce'),
    every: positiveInt().nullable().default(null).describe('also evaluate the student every N steps (with limit_during_training); null: after training only'),
    limit_during_training: positiveInt().default(50).describe('documents per suite in evaluations during training'),
    engine: z
      .enum(['auto', 'tfjs', 'llama.cpp'])
      .default('tfjs')
      .describe('what decodes local targets\' generation suites: tfjs, or llama.cpp (node-llama-cpp) where it matches tfjs within 1e-4 nats; auto: llama.cpp when installed and exact'),
  })
  .describe('evaluation after (and during) training, written to <run>/eval/');

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
    teacher: teacher.optional(),
    generate: generate.optional(),
    student,
    data,
    train,
    distill: distill.optional(),
    dpo: dpo.optional(),
    eval: evaluation.optional(),
    export: exportSection.optional(),
  })
  .describe('slm-train recipe');

/** The recipe as validated, before paths are resolved and keys are camelCased. */
export type RecipeYaml = z.output<typeof recipeSchema>;
export type Backend = (typeof BACKENDS)[number];
