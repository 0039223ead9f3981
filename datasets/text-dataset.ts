/**
 * A JSONL text dataset ready for training: records -> examples -> train/validation split -> packed
 * windows -> batch iterators. Plain text is packed as one stream; prompt/response pairs are kept whole.
 */
import type { Tokenizer } from '../src/tokenizer/tokenizer.ts';
import { BatchIterator, ValidationBatches } from '../trainers/batches.ts';
import { packGreedy, packStream, type Packed, type PackStats, type TextExample } from '../trainers/packing.ts';
import { DatasetError } from './errors.ts';
import { hashString, splitByHash, splitBySpec, type ValidationSpec } from './split.ts';
import { readTextExamples, type ExampleFormat, type FormatOptions, type SourcedExample } from './text-examples.ts';

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
  format: ExampleFormat | 'preference';
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

/** One dataset of a mix: its file, how much of it an epoch takes, and its own format settings. */
export interface MixSource extends FormatOptions {
  path: string;
  /** Uses of each example per epoch: 2 repeats them all, 0.5 takes half of them (chosen by the seed). */
  weight: number;
}

/**
 * Several datasets as one: each is read with its own format settings and split as `options.validation`
 * says, then its training examples are weighted (see MixSource) and all are packed and shuffled together.
 * Plain text packs as a stream and examples whole, so a mix is all text or all examples (prompt/response
 * and messages mix).
 */
export async function loadMixedDataset(tokenizer: Tokenizer, sources: readonly MixSource[], options: Omit<TextDatasetOptions, 'path'>): Promise<TextDataset> {
  const files = await Promise.all(sources.map((source) => readTextExamples(source.path, tokenizer, { ...options, ...source })));
  const textual = files.filter((file) => file.format === 'text');
  if (textual.length > 0 && textual.length < files.length) {
    const kinds = files.map((file) => `${file.path}: ${file.format}`).join(', ');
    throw new DatasetError(`data.mix: mix text with text, and prompt/response or messages with each other, not both (${kinds})`);
  }
  // A held-out share comes from each file; a held-out file is read once, in the first file's format.
  const spec = options.validation;
  const heldOutFile = spec !== undefined && 'path' in spec;
  const train: SourcedExample[] = [];
  const validation: SourcedExample[] = heldOutFile ? (await readTextExamples(spec.path, tokenizer, { ...options, ...sources[0], format: files[0].format })).examples : [];
  for (const [i, file] of files.entries()) {
    const split = heldOutFile ? { train: file.examples, validation: [] } : await splitExamples(file.examples, file.format, tokenizer, { ...options, ...sources[i] });
    train.push(...weighted(split.train, sources[i].weight, options.seed + i));
    validation.push(...split.validation);
  }
  return batchExamples({ train, validation }, files[0].format, tokenizer, { ...options, path: sources.map((s) => s.path).join(' + ') });
}

/** Each example `floor(weight)` times, and a seeded choice of the fractional share once more. */
function weighted(examples: SourcedExample[], weight: number, seed: number): SourcedExample[] {
  if (!(Number.isFinite(weight) && weight > 0)) throw new DatasetError(`data.mix: weight must be a positive number, got ${weight}`);
  const whole = Math.floor(weight);
  const out = Array.from({ length: whole }, () => examples).flat();
  const extra = Math.round((weight - whole) * examples.length);
  const byHash = [...examples].sort((a, b) => hashString(a.key, seed) - hashString(b.key, seed));
  return [...out, ...byHash.slice(0, extra)];
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
  const padId = padIdOf(tokenizer);
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
  const readHeldOut = async (path: string) => (await readTextExamples(path, tokenizer, { ...options, format })).examples;
  return splitBySpec(examples, (e) => e.key, options.validation, options.seed, readHeldOut);
}

/** Pad positions are never targets, so any in-vocabulary id will do when the tokenizer has no pad token. */
export function padIdOf(tokenizer: Tokenizer): number {
  return tokenizer.padId ?? tokenizer.eosId ?? 0;
}
