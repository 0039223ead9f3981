/**
 * JSONL records -> token examples for causal LM training.
 *
 * Mask convention: `lossMask[i] = 1` means ids[i] is a prediction target, predicted from ids[0..i).
 * Nothing predicts the first token, so lossMask[0] is always 0.
 */
import type { Tokenizer } from '../src/tokenizer/tokenizer.ts';
import type { TextExample } from '../trainers/packing.ts';
import { DatasetError } from './errors.ts';
import { readRecords, recordPosition } from './readers.ts';
import { chatExample, chatRenderer, MESSAGES_FIELDS } from './chat-examples.ts';
import { messagesField } from './record-fields.ts';
import { renderRecordTemplate } from './record-template.ts';

export type ExampleFormat = 'text' | 'prompt_response' | 'messages';

export interface FormatOptions {
  /** `auto` picks by the first record's fields: messages (or conversations), prompt and response, else text. Default `auto`. */
  format?: ExampleFormat | 'auto';
  textField?: string;
  promptField?: string;
  responseField?: string;
  /** The field chat data is in; null (default): `messages`, else `conversations`. */
  messagesField?: string | null;
  /** Chat data is rendered with this template (the model's); null: ChatML. */
  chatTemplate?: string | null;
  /** `{{field}}` templates for prompt/response data, e.g. "Question: {{question}}\nAnswer:" and " {{answer}}". */
  promptTemplate?: string | null;
  responseTemplate?: string | null;
}

export interface SourcedExample {
  /** Where the record is: `file:line` (JSONL, CSV) or `file: row N` (Parquet, Arrow). */
  source: string;
  /** The record's training text, so a split can be keyed on content rather than on file order. */
  key: string;
  example: TextExample;
}

export interface ExampleFile {
  path: string;
  format: ExampleFormat;
  examples: SourcedExample[];
}

interface Fields {
  text: string;
  prompt: string;
  response: string;
  /** Where chat data may be, in order. */
  messages: readonly string[];
}

/** Every record of a JSONL, CSV, Parquet or Arrow file as an example; all records must share one format. */
export async function readTextExamples(
  path: string,
  tokenizer: Tokenizer,
  options: FormatOptions = {},
): Promise<ExampleFile> {
  const fields = fieldNames(options);
  let format: ExampleFormat | undefined = options.format === 'auto' ? undefined : options.format;
  const examples: SourcedExample[] = [];
  let render: ReturnType<typeof chatRenderer> | undefined;
  for await (const found of readRecords(path)) {
    const where = recordPosition(path, found);
    const record = found.value;
    format ??= options.promptTemplate || options.responseTemplate ? 'prompt_response' : detectFormat(record, fields, where);
    if (format === 'messages') {
      const messages = messagesField(record, chatField(record, fields, where), where);
      render ??= chatRenderer(options.chatTemplate ?? null, tokenizer);
      examples.push({ source: where, key: JSON.stringify(messages), example: chatExample(messages, render, tokenizer, where) });
      continue;
    }
    const texts = format === 'prompt_response' ? promptResponseTexts(record, options, fields, where) : recordTexts(record, format, fields, where);
    const example =
      format === 'text'
        ? textExample(texts[0], tokenizer)
        : promptResponseExample(texts[0], texts[1], tokenizer);
    examples.push({ source: where, key: texts.join('\u0000'), example });
  }
  if (format === undefined) throw new DatasetError(`${path}: no records`);
  return { path, format, examples };
}

/** BOS (when the tokenizer has one) + text + EOS; every token after the first is a target. */
export function textExample(text: string, tokenizer: Tokenizer): TextExample {
  const ids = [...optional(tokenizer.bosId), ...tokenizer.encode(text), ...optional(tokenizer.eosId)];
  return { ids, lossMask: ids.map((_, i) => (i === 0 ? 0 : 1)) };
}

/**
 * BOS + prompt + response + EOS with targets on the response and EOS only. The pair is tokenized as one
 * text (as TRL does) so ids match those of the plain concatenation; where a token straddles the
 * prompt/response boundary it counts as response.
 */
export function promptResponseExample(prompt: string, response: string, tokenizer: Tokenizer): TextExample {
  const bos = optional(tokenizer.bosId);
  const joint = tokenizer.encode(prompt + response);
  const promptLength = commonPrefixLength(tokenizer.encode(prompt), joint);
  const ids = [...bos, ...joint, ...optional(tokenizer.eosId)];
  const firstTarget = Math.max(1, bos.length + promptLength);
  return { ids, lossMask: ids.map((_, i) => (i >= firstTarget ? 1 : 0)) };
}

function detectFormat(record: Record<string, unknown>, fields: Fields, where: string): ExampleFormat {
  if (fields.messages.some((name) => Array.isArray(record[name]))) return 'messages';
  if (fields.prompt in record && fields.response in record) return 'prompt_response';
  if (fields.text in record) return 'text';
  const found = Object.keys(record).map((k) => JSON.stringify(k)).join(', ');
  throw new DatasetError(
    `${where}: cannot tell the format from fields [${found}]: expected "${fields.text}" (format text), ` +
      `"${fields.prompt}" and "${fields.response}" (format prompt_response), or a list in ${fields.messages.map((m) => `"${m}"`).join(' or ')} (format messages)`,
  );
}

/** The field of a chat record its messages are in. */
function chatField(record: Record<string, unknown>, fields: Fields, where: string): string {
  const found = fields.messages.find((name) => name in record);
  if (found === undefined) {
    throw new DatasetError(`${where}: missing field ${fields.messages.map((m) => JSON.stringify(m)).join(' or ')} (format messages expects a list of messages)`);
  }
  return found;
}

/** The record's text fields for the format; a field a template replaces is not required. */
function recordTexts(record: Record<string, unknown>, format: 'text' | 'prompt_response', fields: Fields, where: string, templates: FormatOptions = {}): string[] {
  const names = format === 'text' ? [fields.text] : [fields.prompt, fields.response];
  const expects = names.map((n) => JSON.stringify(n)).join(' and ');
  return names.map((name, i) => {
    if (format === 'prompt_response' && (i === 0 ? templates.promptTemplate : templates.responseTemplate)) return '';
    if (!(name in record)) {
      throw new DatasetError(`${where}: missing field ${JSON.stringify(name)} (format ${format} expects ${expects})`);
    }
    const value = record[name];
    if (typeof value !== 'string') {
      throw new DatasetError(`${where}: field ${JSON.stringify(name)} must be a string, got ${typeName(value)}`);
    }
    return value;
  });
}

/** The prompt and response of a record: a template over its fields where given, else the field itself. */
function promptResponseTexts(record: Record<string, unknown>, options: FormatOptions, fields: Fields, where: string): string[] {
  const [promptField, responseField] = recordTexts(record, 'prompt_response', fields, where, options);
  return [
    options.promptTemplate ? renderRecordTemplate(options.promptTemplate, record, where) : promptField,
    options.responseTemplate ? renderRecordTemplate(options.responseTemplate, record, where) : responseField,
  ];
}

function fieldNames(options: FormatOptions): Fields {
  return {
    text: options.textField ?? 'text',
    prompt: options.promptField ?? 'prompt',
    response: options.responseField ?? 'response',
    messages: options.messagesField ? [options.messagesField] : MESSAGES_FIELDS,
  };
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'array' : typeof value;
}

function optional(id: number | null): number[] {
  return id === null ? [] : [id];
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}
