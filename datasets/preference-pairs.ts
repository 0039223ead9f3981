/**
 * Preference data for DPO: records with a `chosen` and a `rejected` completion of one prompt, in TRL's
 * forms:
 *
 *   {"prompt": "...", "chosen": "...", "rejected": "..."}                       standard
 *   {"prompt": [messages], "chosen": [messages], "rejected": [messages]}      conversational
 *   {"chosen": [messages], "rejected": [messages]}                            implicit prompt: the messages both share
 *
 * Each side becomes a training example with targets on its completion only (and EOS, or the chat
 * template's end-of-turn marker): the prompt is context, as in TRL, and so are earlier assistant turns.
 */
import type { Tokenizer } from '../src/tokenizer/tokenizer.ts';
import { BatchIterator, ValidationBatches } from '../trainers/batches.ts';
import { packPairs, type PackedWindows, type TextExample } from '../trainers/packing.ts';
import { chatExample, chatRenderer, type ChatRenderer } from './chat-examples.ts';
import { DatasetError } from './errors.ts';
import { readRecords, recordPosition } from './readers.ts';
import { messagesField, type ChatMessage } from './record-fields.ts';
import { splitBySpec, type ValidationSpec } from './split.ts';
import { padIdOf, type TextDataset } from './text-dataset.ts';
import { promptResponseExample } from './text-examples.ts';

export interface PreferencePair {
  /** Where the record is: `file:line` or `file: row N`. */
  source: string;
  /** The record's content, which the validation split is keyed on. */
  key: string;
  chosen: TextExample;
  rejected: TextExample;
}

export interface PreferenceOptions {
  /** The field the prompt is in [prompt]. */
  promptField?: string;
  /** Conversational records are rendered with this template (the model's); null: ChatML. */
  chatTemplate?: string | null;
}

export async function readPreferencePairs(path: string, tokenizer: Tokenizer, options: PreferenceOptions = {}): Promise<PreferencePair[]> {
  const promptField = options.promptField ?? 'prompt';
  let render: ChatRenderer | undefined;
  const pairs: PreferencePair[] = [];
  for await (const found of readRecords(path)) {
    const where = recordPosition(path, found);
    const record = found.value;
    for (const side of ['chosen', 'rejected']) {
      if (!(side in record)) {
        const fields = Object.keys(record).map((k) => JSON.stringify(k)).join(', ');
        throw new DatasetError(`${where}: missing field "${side}" (preference pairs need "chosen" and "rejected", and "${promptField}" unless they are conversations sharing their first messages; record has [${fields}])`);
      }
    }
    const key = JSON.stringify([record[promptField], record.chosen, record.rejected]);
    if (Array.isArray(record.chosen)) {
      render ??= chatRenderer(options.chatTemplate ?? null, tokenizer);
      pairs.push({ source: where, key, ...conversationalPair(record, promptField, render, tokenizer, where) });
    } else {
      pairs.push({ source: where, key, ...standardPair(record, promptField, tokenizer, where) });
    }
  }
  if (pairs.length === 0) throw new DatasetError(`${path}: no records`);
  return pairs;
}

function standardPair(record: Record<string, unknown>, promptField: string, tokenizer: Tokenizer, where: string): Pick<PreferencePair, 'chosen' | 'rejected'> {
  const [prompt, chosen, rejected] = [promptField, 'chosen', 'rejected'].map((name) => {
    const value = record[name];
    if (typeof value !== 'string') {
      throw new DatasetError(`${where}: field ${JSON.stringify(name)} must be a string like "chosen" (or all three lists of messages), got ${describe(value)}`);
    }
    return value;
  });
  return { chosen: promptResponseExample(prompt, chosen, tokenizer), rejected: promptResponseExample(prompt, rejected, tokenizer) };
}

/** Both sides rendered as whole conversations; targets on the assistant turns after the prompt's messages. */
function conversationalPair(
  record: Record<string, unknown>,
  promptField: string,
  render: ChatRenderer,
  tokenizer: Tokenizer,
  where: string,
): Pick<PreferencePair, 'chosen' | 'rejected'> {
  const chosen = messagesField(record, 'chosen', where);
  const rejected = messagesField(record, 'rejected', where);
  if (promptField in record) {
    const prompt = messagesField(record, promptField, where);
    return {
      chosen: chatExample([...prompt, ...chosen], render, tokenizer, where, prompt.length),
      rejected: chatExample([...prompt, ...rejected], render, tokenizer, where, prompt.length),
    };
  }
  const shared = sharedPrefixLength(chosen, rejected);
  if (shared === chosen.length || shared === rejected.length) {
    throw new DatasetError(`${where}: "chosen" and "rejected" do not differ after their shared messages, so there is no completion to compare`);
  }
  return { chosen: chatExample(chosen, render, tokenizer, where, shared), rejected: chatExample(rejected, render, tokenizer, where, shared) };
}

function sharedPrefixLength(a: readonly ChatMessage[], b: readonly ChatMessage[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n].role === b[n].role && a[n].content === b[n].content) n++;
  return n;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing (the field is missing)';
  if (value === null) return 'null';
  return Array.isArray(value) ? 'a list' : typeof value;
}

export interface PreferenceDatasetOptions extends PreferenceOptions {
  seqLen: number;
  /** Pairs per batch. */
  batchSize: number;
  seed: number;
  validation?: ValidationSpec;
  /** Each window's reference log-probability (see PackedWindows.referenceLogps), for the training and the held-out pairs. */
  referenceLogps?: (windows: PackedWindows, part: 'train' | 'validation') => Promise<Float32Array>;
}

/** The pairs of `path`, split for validation, each side in a window of its own, batched pair by pair. */
export async function loadPreferenceDataset(path: string, tokenizer: Tokenizer, options: PreferenceDatasetOptions): Promise<TextDataset> {
  const pairs = await readPreferencePairs(path, tokenizer, options);
  const split = await splitBySpec(pairs, (p) => p.key, options.validation, options.seed, (heldOut) => readPreferencePairs(heldOut, tokenizer, options));
  const padId = padIdOf(tokenizer);
  const train = packPairs(split.train, options.seqLen, padId);
  if (train.stats.windows === 0) throw new DatasetError(`${path}: no training pairs after the validation split`);
  const validation = split.validation.length > 0 ? packPairs(split.validation, options.seqLen, padId) : null;
  if (options.referenceLogps) {
    train.windows.referenceLogps = await options.referenceLogps(train.windows, 'train');
    if (validation) validation.windows.referenceLogps = await options.referenceLogps(validation.windows, 'validation');
  }
  return {
    format: 'preference',
    prompts: [],
    train: new BatchIterator(train.windows, options.batchSize, options.seed),
    validation: validation && new ValidationBatches(validation.windows, options.batchSize),
    stats: { train: train.stats, validation: validation?.stats ?? null },
  };
}
