/**
 * Seed prompts for synthetic data: a records file (JSONL, CSV, Parquet, Arrow) or a list written in the
 * recipe, each turned into the text sent to the teacher through an optional `{{field}}` template.
 */
import { DatasetError } from './errors.ts';
import { readRecords, recordPosition } from './readers.ts';
import { recordText, renderRecordTemplate } from './record-template.ts';

export interface PromptSpec {
  /** A records file, or the prompts themselves. */
  prompts: string | readonly string[];
  promptField: string;
  /** Read when set: the response to score (label mode). */
  responseField?: string;
  /** Read when set: the reference answer for answer checks. */
  referenceField?: string | null;
  /** `{{name}}` is replaced by the record's field `name`; without a template the prompt field is sent. */
  template?: string | null;
  limit?: number | null;
}

export interface SeedPrompt {
  text: string;
  response?: string;
  reference?: string;
  /** `file:line`, `file: row N` or `generate.prompts[i]`. */
  source: string;
}

export async function readSeedPrompts(spec: PromptSpec): Promise<SeedPrompt[]> {
  const limit = spec.limit ?? Infinity;
  const prompts: SeedPrompt[] = [];
  if (typeof spec.prompts !== 'string') {
    for (const [i, text] of spec.prompts.slice(0, limit).entries()) {
      prompts.push(seedPrompt({ [spec.promptField]: text }, spec, `generate.prompts[${i}]`));
    }
    return prompts;
  }
  for await (const record of readRecords(spec.prompts)) {
    if (prompts.length >= limit) break;
    prompts.push(seedPrompt(record.value, spec, recordPosition(spec.prompts, record)));
  }
  if (prompts.length === 0) throw new DatasetError(`${spec.prompts}: no prompts in the file`);
  return prompts;
}

function seedPrompt(record: Record<string, unknown>, spec: PromptSpec, source: string): SeedPrompt {
  const text = spec.template ? renderRecordTemplate(spec.template, record, source) : recordText(record, spec.promptField, source);
  const prompt: SeedPrompt = { text, source };
  if (spec.responseField !== undefined) prompt.response = recordText(record, spec.responseField, source);
  if (spec.referenceField) prompt.reference = recordText(record, spec.referenceField, source);
  return prompt;
}
