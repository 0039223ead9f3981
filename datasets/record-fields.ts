/**
 * Picks the training fields out of a dataset record whose columns carry the user's names, e.g.
 * `{ prompt: 'question', response: 'answer' }` for GSM8K or `{ messages: 'conversations' }` for chat data.
 */
import { DatasetError } from './errors.ts';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface PromptResponseFields {
  prompt: string;
  response: string;
}

export interface MessagesFields {
  messages: string;
}

export type FieldMap = PromptResponseFields | MessagesFields;

export interface PromptResponse {
  prompt: string;
  response: string;
}

export interface Conversation {
  messages: ChatMessage[];
}

/** `where` names the record in errors, e.g. `data.csv:12` (see `recordPosition`). */
export function mapFields(record: Record<string, unknown>, fields: PromptResponseFields, where?: string): PromptResponse;
export function mapFields(record: Record<string, unknown>, fields: MessagesFields, where?: string): Conversation;
export function mapFields(record: Record<string, unknown>, fields: FieldMap, where = 'record'): PromptResponse | Conversation {
  if ('messages' in fields) return { messages: messagesField(record, fields.messages, where) };
  return { prompt: stringField(record, fields.prompt, where), response: stringField(record, fields.response, where) };
}

function stringField(record: Record<string, unknown>, name: string, where: string): string {
  const value = fieldValue(record, name, where);
  if (typeof value !== 'string') throw new DatasetError(`${where}: field ${JSON.stringify(name)} must be a string, got ${typeName(value)}`);
  return value;
}

const SHAREGPT_ROLES: Record<string, string> = { human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', system: 'system', tool: 'tool' };

/** A list of messages: OpenAI's {role, content}, or ShareGPT's {from: human|gpt|system, value}, as {role, content}. */
export function messagesField(record: Record<string, unknown>, name: string, where: string): ChatMessage[] {
  const value = fieldValue(record, name, where);
  if (!Array.isArray(value)) {
    throw new DatasetError(`${where}: field ${JSON.stringify(name)} must be an array of {role, content}, got ${typeName(value)}`);
  }
  return value.map((message: unknown, i) => {
    const m = (message ?? {}) as Record<string, unknown>;
    if (typeof m.role === 'string' && typeof m.content === 'string') return { role: m.role, content: m.content };
    const role = typeof m.from === 'string' ? SHAREGPT_ROLES[m.from] : undefined;
    if (role !== undefined && typeof m.value === 'string') return { role, content: m.value };
    throw new DatasetError(
      `${where}: ${name}[${i}] must be {role: string, content: string} (OpenAI) or {from: human|gpt|system, value: string} (ShareGPT), got ${JSON.stringify(message)}`,
    );
  });
}

function fieldValue(record: Record<string, unknown>, name: string, where: string): unknown {
  if (!(name in record)) {
    const found = Object.keys(record).map((key) => JSON.stringify(key)).join(', ');
    throw new DatasetError(`${where}: missing field ${JSON.stringify(name)} (record has [${found}])`);
  }
  return record[name];
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'array' : typeof value;
}
