/**
 * The validated recipe every stage reads: camelCase keys, every default filled in, every path absolute.
 * It mirrors recipe.yaml key for key (snake_case there); case.ts checks at compile time that the two agree.
 */
import type { Llama3RopeScaling, ModelConfig } from '../model/config.ts';
import type { Backend, EXPORT_FORMATS } from './schema.ts';

export type { Backend };

export interface Recipe {
  name: string;
  seed: number;
  backend: Backend;
  /** Absolute; the run folder is `<outputDir>/<name>`. */
  outputDir: string;
  teacher?: TeacherSpec;
  generate?: GenerateSpec;
  student: StudentSpec;
  data: DataSpec;
  train: TrainSpec;
  distill?: DistillSpec;
  dpo?: DpoSpec;
  eval?: EvalSpec;
  export?: { formats: (typeof EXPORT_FORMATS)[number][] };
}

export interface EvalSuiteSpec {
  suite: 'gsm8k' | 'mmlu' | 'custom';
  /** Absolute paths. */
  data?: string;
  fewshotData?: string;
  path?: string;
  style?: '5-shot' | 'cot-8-shot' | 'zero-shot' | 'chat';
  mode?: 'loglikelihood' | 'generate';
  shots?: number;
  limit: number | null;
}

export interface EvalSpec {
  suites: EvalSuiteSpec[];
  targets: ('student' | 'teacher' | 'base' | 'ce_baseline')[];
  every: number | null;
  limitDuringTraining: number;
  /** What decodes the generation suites of local targets (see src/eval/llama-cpp-engine.ts). */
  engine: 'auto' | 'tfjs' | 'llama.cpp';
}

export interface DistillSpec {
  alpha: number;
  temperature: number;
  divergence: 'forward_kl' | 'reverse_kl' | 'jsd';
  beta: number;
  /** null: as the data's manifest says. */
  tail: 'bucket' | 'renormalize' | null;
  labels: 'auto' | 'stored' | 'online' | 'sequence';
  rowsPerChunk: number;
  vocabPerChunk: number;
  onPolicy: { lambda: number; maxTokens: number; temperature: number };
  /** Also train the student with CE alone on the same data, into ce-baseline/. */
  compareCe: boolean;
}

export interface DpoSpec {
  loss: 'sigmoid' | 'sigmoid_norm' | 'ipo';
  beta: number;
  labelSmoothing: number;
  /** RPO's weight of the chosen completions' cross-entropy; null: plain DPO. */
  rpoAlpha: number | null;
  /** A model reference (absolute path, hub id or ollama: name); null: the student as training starts. */
  reference: string | null;
}

/** One variant per kind of student, told apart by `type`. */
export type StudentSpec = ScratchStudentSpec | LoraStudentSpec | FullStudentSpec;

/** Full fine-tuning: every weight of a pretrained model trains. */
export interface FullStudentSpec {
  type: 'full';
  /** Absolute path of a model folder or .gguf file, a hub id, or `ollama:NAME[:TAG]` as written. */
  base: string;
}

export interface LoraStudentSpec {
  type: 'lora';
  /** Absolute path of a model folder or .gguf file, or `ollama:NAME[:TAG]` as written. */
  base: string;
  rank: number;
  alpha: number;
  dropout: number;
  targets: 'all-linear' | ('q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down')[];
  rslora: boolean;
  /** How the base's weights are held (see WeightResidency). */
  weights: 'auto' | 'resident' | 'streamed';
}

export interface ScratchStudentSpec {
  type: 'scratch';
  /** `'byte'`, or the absolute path of a tokenizer.json file. */
  tokenizer: string;
  architecture: ArchitectureSpec;
  initStd: number;
}

/**
 * The model's own fields, so the two cannot drift; the vocabulary size comes from the tokenizer. A student
 * from scratch takes Llama 3's rope scaling (linear scaling is Gemma 3's, for pretrained bases).
 */
export type ArchitectureSpec = Flat<{ ropeScaling: Llama3RopeScaling | null } & Pick<
  ModelConfig,
  | 'hiddenSize'
  | 'intermediateSize'
  | 'numLayers'
  | 'numHeads'
  | 'numKvHeads'
  | 'headDim'
  | 'ropeTheta'
  | 'attentionBias'
  | 'tieWordEmbeddings'
  | 'maxPositionEmbeddings'
  | 'rmsNormEps'
>>;

type Flat<T> = { [K in keyof T]: T[K] };

export type RopeScalingSpec = Llama3RopeScaling;

export interface TeacherSpec {
  provider: 'local' | 'ollama' | 'openai';
  /** local: an absolute model path or `ollama:NAME[:TAG]`; servers: the model name as they know it. */
  model: string;
  endpoints?: string[];
  /** The name of the environment variable holding the API key, never the key. */
  apiKeyEnv?: string;
  /** Absolute path of a recipe whose run produces `model` (local), run first when `model` is missing. */
  recipe?: string;
  concurrency: number;
  requestsPerMinute: number | null;
  timeoutS: number;
  maxRetries: number;
}

export interface GenerateSpec {
  mode: 'generate' | 'label' | 'preference';
  /** An absolute path of a records file, or the prompts themselves. */
  prompts: string | string[];
  promptField: string;
  responseField: string;
  referenceField: string | null;
  /** `{{field}}` placeholders are replaced by the record's fields. */
  template: string | null;
  system: string | null;
  limit: number | null;
  samplesPerPrompt: number;
  temperature: number;
  maxTokens: number;
  k: number;
  tail: 'bucket' | 'renormalize';
  dedup: boolean;
  filters: ResponseFilterSpec;
  shardRows: number;
}

export interface ResponseFilterSpec {
  minChars: number;
  maxChars: number | null;
  /** Regular expressions (source text). */
  require: string | null;
  reject: string | null;
  dropTruncated: boolean;
  answer: 'none' | 'gsm8k' | 'exact';
}

/** One file of `data.mix` (absolute path), with its weight and the format settings it overrides. */
export interface MixSourceSpec {
  path: string;
  weight: number;
  format?: DataSpec['format'];
  textField?: string;
  promptField?: string;
  responseField?: string;
  messagesField?: string;
}

export interface DataSpec {
  /** Absolute path of the training JSONL file; absent when the train stage reads the generated shards. */
  train?: string;
  /** Instead of train: several files mixed with weights. */
  mix?: MixSourceSpec[];
  format: 'auto' | 'text' | 'prompt_response' | 'messages';
  textField: string;
  promptField: string;
  responseField: string;
  /** Where messages data is; null: `messages`, else `conversations`. */
  messagesField: string | null;
  /** `{{field}}` templates building the prompt and response from a record; null: the fields as they are. */
  promptTemplate: string | null;
  responseTemplate: string | null;
  /** Hold out a share of the training file, or read a separate (absolute) file. */
  validation: { fraction: number } | { path: string };
  seqLen: number;
}

export interface TrainSpec {
  objective: 'sft' | 'dpo';
  /** Optimizer steps; null when `epochs` says how long to train (the train stage turns it into steps). */
  maxSteps: number | null;
  /** Passes over the training windows, instead of maxSteps; null when maxSteps is given. */
  epochs: number | null;
  batchSize: number;
  gradAccum: number;
  /** Recompute layers in the backward pass; auto: when the memory plan needs it. */
  recompute: 'auto' | boolean;
  lr: number;
  /** The schedule decays to `lr * minLrRatio`. */
  minLrRatio: number;
  warmupSteps: number;
  schedule: 'cosine' | 'linear' | 'constant';
  weightDecay: number;
  betas: [number, number];
  eps: number;
  /** null: no clipping. */
  clipGradNorm: number | null;
  evalEvery: number;
  evalBatches: number;
  checkpointEvery: number;
  keepCheckpoints: number;
  logEvery: number;
  /** auto: continue from the latest intact checkpoint when its settings match; force: even when not. */
  resume: 'auto' | 'never' | 'force';
}
