/**
 * The validated recipe every stage reads: camelCase keys, every default filled in, every path absolute.
 * It mirrors recipe.yaml key for key (snake_case there); case.ts checks at compile time that the two agree.
 */
import type { ModelConfig, RopeScaling } from '../model/config.ts';
import type { Backend } from './schema.ts';

export type { Backend };

export interface Recipe {
  name: string;
  seed: number;
  backend: Backend;
  /** Absolute; the run folder is `<outputDir>/<name>`. */
  outputDir: string;
  student: StudentSpec;
  data: DataSpec;
  train: TrainSpec;
}

/** One variant per kind of student, told apart by `type`. */
export type StudentSpec = ScratchStudentSpec | LoraStudentSpec;

export interface LoraStudentSpec {
  type: 'lora';
  /** Absolute path of a model folder or .gguf file, or `ollama:NAME[:TAG]` as written. */
  base: string;
  rank: number;
  alpha: number;
  dropout: number;
  targets: 'all-linear' | ('q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down')[];
  rslora: boolean;
}

export interface ScratchStudentSpec {
  type: 'scratch';
  /** `'byte'`, or the absolute path of a tokenizer.json file. */
  tokenizer: string;
  architecture: ArchitectureSpec;
  initStd: number;
}

/** The model's own fields, so the two cannot drift; the vocabulary size comes from the tokenizer. */
export type ArchitectureSpec = Pick<
  ModelConfig,
  | 'hiddenSize'
  | 'intermediateSize'
  | 'numLayers'
  | 'numHeads'
  | 'numKvHeads'
  | 'headDim'
  | 'ropeTheta'
  | 'ropeScaling'
  | 'attentionBias'
  | 'tieWordEmbeddings'
  | 'maxPositionEmbeddings'
  | 'rmsNormEps'
>;

export type RopeScalingSpec = RopeScaling;

export interface DataSpec {
  /** Absolute path of the training JSONL file. */
  train: string;
  format: 'auto' | 'text' | 'prompt_response';
  textField: string;
  promptField: string;
  responseField: string;
  /** Hold out a share of the training file, or read a separate (absolute) file. */
  validation: { fraction: number } | { path: string };
  seqLen: number;
}

export interface TrainSpec {
  maxSteps: number;
  batchSize: number;
  gradAccum: number;
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
  resume: 'auto' | 'never';
}
