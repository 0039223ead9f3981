/**
 * A JSONL text dataset ready for training: records -> examples -> train/validation split -> packed
 * windows -> batch iterators. Plain text is packed as one stream; prompt/response pairs are kept whole.
 */
import type { Tokenizer } from '../src/tokenizer/tokenizer.ts';
import { BatchIterator, ValidationBatches } from './batches.ts';
import { DatasetError } from './errors.ts';
import { packGreedy, packStream, type Packed, type PackStats } from './packing.ts';
import { splitByHash, type ValidationSpec } from './split.ts';
import { readTextExamples, type ExampleFormat, type FormatOptions, type SourcedExample, type TextExample } from './text-examples.ts';

export interface TextDatasetOptions extends FormatOptions {
  path: string;
  seqLen: number;
  batchSize: number;
  /** Seeds both the validation split and the training shuffle. */
  seed: number;
  /** A fraction of `path` held out, or a separate file in the same format. Default: none. */
  validation?: ValidationSpec;
}

export interface TextDataset {
  format: ExampleFormat;
  /** The prompts of the training examples (prompt/response data only), for sampling from the student. */
  prompts: number[][];
  train: BatchIterator;
  validation: ValidationBatches | null;
  stats: { train: PackStats; validation: PackStats | null };
}

export async function loadTextDataset(tokenizer: Tokenizer, options: TextDatasetOptions): Promise<TextDataset> {
  const file = await readTextExamples(options.path, tokenizer, options);
  const split = await splitExamples(file.examples, file.format, tokenizer, options);
  return batchExamples(split, file.format, tokenizer, options);
}

/** Split, packed and batched examples that come from elsewhere (the generate stage's shards). */
export function datasetFromExamples(
  examples: SourcedExample[],
  tokenizer: Tokenizer,
  options: Omit<TextDatasetOptions, 'validation' | keyof FormatOptions> & { validation: { fraction: number } },
): TextDataset {
  const split = splitByHash(examples, (e) => e.key, options.validation.fraction, options.seed);
  return batchExamples(split, 'prompt_response', tokenizer, options);
}

function batchExamples(
  { train, validation }: { train: SourcedExample[]; validation: SourcedExample[] },
  format: ExampleFormat,
  tokenizer: Tokenizer,
  options: Pick<TextDatasetOptions, 'path' | 'seqLen' | 'batchSize' | 'seed'>,
): TextDataset {
  // Pad positions are never targets, so any in-vocabulary id will do when the tokenizer has no pad token.
  const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
  const pack = (examples: SourcedExample[]): Packed => {
    const plain = examples.map((e) => e.example);
    return format === 'text' ? packStream(plain, options.seqLen, padId) : packGreedy(plain, options.seqLen, padId);
  };
  const packedTrain = pack(train);
  if (packedTrain.windows.count === 0) {
    throw new DatasetError(`${options.path}: no training windows after the validation split and packing`);
  }
  const packedValidation = validation.length > 0 ? pack(validation) : null;
  return {
    format,
    prompts: format === 'text' ? [] : train.map((e) => promptOf(e.example)),
    train: new BatchIterator(packedTrain.windows, options.batchSize, options.seed),
    validation: packedValidation && new ValidationBatches(packedValidation.windows, options.batchSize),
    stats: { train: packedTrain.stats, validation: packedValidation?.stats ?? null },
  };
}

/** The tokens before the first target. */
function promptOf(example: TextExample): number[] {
  const first = example.lossMask.indexOf(1);
  return example.ids.slice(0, first < 0 ? example.ids.length : first);
}

async function splitExamples(
  examples: SourcedExample[],
  format: ExampleFormat,
  tokenizer: Tokenizer,
  options: TextDatasetOptions,
): Promise<{ train: SourcedExample[]; validation: SourcedExample[] }> {
  const spec = options.validation;
  if (spec === undefined) return { train: examples, validation: [] };
  if ('path' in spec) {
    const held = await readTextExamples(spec.path, tokenizer, { ...options, format });
    return { train: examples, validation: held.examples };
  }
  return splitByHash(examples, (e) => e.key, spec.fraction, options.seed);
}
