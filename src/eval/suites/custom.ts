/**
 * A suite from a YAML file and a dataset: the user's own task, prompted and scored the way the harness
 * does its tasks (few-shot context, then the document's prompt; choices by log-likelihood, or generation
 * compared with the target). A complete file, defaults noted in the comments:
 *
 * ```yaml
 * name: capitals                  # the suite's name in results
 * version: "1"                    # bump when the prompt or scoring changes (default "1")
 * data: capitals.jsonl            # JSONL, CSV, Parquet or Arrow; relative to this file
 * prompt: "Q: What is the capital of {{country}}?\nA:"    # {{field}} takes a record's field
 * target_field: capital           # the field holding the reference answer
 * fewshot:                        # optional: answered examples before each document
 *   examples:
 *     - { country: France, capital: Paris }
 *     - { country: Japan, capital: Tokyo }
 *   separator: "\n\n"             # between shots, and between the last shot and the prompt
 *   target_template: " {{capital}}"   # follows each shot's prompt; default: a space and the target
 *                                 # (with choices: the prefix and the correct choice)
 * generate:                       # either generate and compare ...
 *   max_tokens: 256
 *   stop: ["\n"]                  # generation ends before the first of these (default none)
 *   extract: "is (\\w+)"          # optional: a JavaScript regex with one group; its first match is the answer
 *   match: exact                  # exact: equal after trimming | contains: the output contains the target
 *                                 # | numeric: the last number equals the target's within tolerance
 *   ignore_case: false            # exact and contains
 *   # tolerance: 0.01             # numeric only: the largest difference still right (default 0)
 * # choices:                      # ... or score each choice's log-likelihood after the prompt (metric acc)
 * #   field: options              # a field with the list of choices (a JSON list in CSV), or
 * #   list: [Paris, Tokyo]        # the same choices for every record
 * #   prefix: " "                 # put before each choice, as the harness's target delimiter
 * #   target_is: text             # text: the target field holds the correct choice | index: its 0-based index
 * ```
 *
 * Problems in the file are reported as `file:line:col: key: problem` (recipe errors, through the recipe's
 * YAML locator); problems in the data as `data.jsonl:12: ...` (DatasetError).
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { DatasetError } from '../../../datasets/errors.ts';
import { formatFromExtension, readRecords, recordPosition } from '../../../datasets/readers.ts';
import { quote, typeNoun } from '../../recipe/issues.ts';
import { locatedError, type Problem } from '../../recipe/load.ts';
import { formatKeyPath, valueAt } from '../../recipe/key-path.ts';
import type { KeyPath } from '../../recipe/key-path.ts';
import { closestMatch } from '../../recipe/suggest.ts';
import { YamlSource } from '../../recipe/yaml-source.ts';
import { SlmError } from '../../util/errors.ts';
import { pathExists } from '../../util/path-exists.ts';
import { argmax, continuationLogprobs, generatedText } from '../answers.ts';
import type { DocumentScore, EvalDocument, EvalResponse, Suite } from '../suite.ts';

// --- the file's shape ------------------------------------------------------------------------------------

const fewshotSchema = z.strictObject({
  examples: z.array(z.record(z.string(), z.unknown())).min(1),
  separator: z.string().default('\n\n'),
  target_template: z.string().optional(),
});

const choicesSchema = z.strictObject({
  field: z.string().min(1).optional(),
  list: z.array(z.string()).min(2).optional(),
  prefix: z.string().default(' '),
  target_is: z.enum(['text', 'index']).default('text'),
});

const generateSchema = z.strictObject({
  max_tokens: z.int().positive().default(256),
  stop: z.array(z.string()).default([]),
  extract: z.string().optional(),
  match: z.enum(['exact', 'contains', 'numeric']).default('exact'),
  ignore_case: z.boolean().default(false),
  tolerance: z.number().nonnegative().optional(),
});

const specShape = {
  name: z.string().min(1),
  version: z.union([z.string(), z.number()]).transform(String).default('1'),
  data: z.string().min(1),
  prompt: z.string(),
  target_field: z.string().min(1),
  fewshot: fewshotSchema.optional(),
  choices: choicesSchema.optional(),
  generate: generateSchema.optional(),
};

const specSchema = z.strictObject(specShape).superRefine((spec, context) => {
  for (const { keyPath, message } of specProblems(spec)) context.addIssue({ code: 'custom', path: [...keyPath], message });
});

export type CustomSuiteSpec = z.output<typeof specSchema>;
type ChoicesSpec = NonNullable<CustomSuiteSpec['choices']>;
type GenerateSpec = NonNullable<CustomSuiteSpec['generate']>;

const ALLOWED_KEYS: Record<string, string[]> = {
  '': Object.keys(specShape),
  fewshot: Object.keys(fewshotSchema.shape),
  choices: Object.keys(choicesSchema.shape),
  generate: Object.keys(generateSchema.shape),
};

/** What the schema alone cannot say: the choice between sections, the regex, the examples' fields. */
function specProblems(spec: CustomSuiteSpec): Problem[] {
  const problems: Problem[] = [];
  if (!spec.choices && !spec.generate) problems.push({ keyPath: [], message: 'needs a choices or a generate section (how to score)' });
  if (spec.choices && spec.generate) problems.push({ keyPath: ['generate'], message: 'choose one of choices and generate' });
  if (spec.choices && (spec.choices.field === undefined) === (spec.choices.list === undefined)) {
    problems.push({ keyPath: ['choices'], message: 'needs exactly one of field (choices per record) and list (the same for all)' });
  }
  const extract = spec.generate?.extract;
  const groups = extract === undefined ? 1 : captureGroups(extract);
  if (groups === null) problems.push({ keyPath: ['generate', 'extract'], message: `not a valid regular expression: ${JSON.stringify(extract)}` });
  else if (groups !== 1) problems.push({ keyPath: ['generate', 'extract'], message: `expected a regular expression with one group (…), got ${groups}` });
  if (spec.generate?.tolerance !== undefined && spec.generate.match !== 'numeric') {
    problems.push({ keyPath: ['generate', 'tolerance'], message: 'applies only with match: numeric' });
  }
  try {
    formatFromExtension(spec.data);
  } catch (error) {
    problems.push({ keyPath: ['data'], message: (error as Error).message.replace(`${spec.data}: `, '') });
  }
  spec.fewshot?.examples.forEach((example, i) => {
    for (const field of shotFields(spec)) {
      const problem = missingField(example, field);
      if (problem) problems.push({ keyPath: ['fewshot', 'examples', i], message: problem });
    }
  });
  return problems;
}

/** The number of capture groups, or null when `source` does not compile. */
function captureGroups(source: string): number | null {
  try {
    // An empty alternative matches anything, so the match lists every group.
    return new RegExp(`${source}|`).exec('')!.length - 1;
  } catch {
    return null;
  }
}

/** The fields a shot reads: those of the prompt and of its target. */
function shotFields(spec: CustomSuiteSpec): string[] {
  const target = spec.fewshot?.target_template;
  const targetFields = target !== undefined ? templateFields(target) : [spec.target_field, ...(spec.choices?.field ? [spec.choices.field] : [])];
  return [...new Set([...templateFields(spec.prompt), ...targetFields])];
}

function missingField(record: Readonly<Record<string, unknown>>, field: string): string | null {
  if (!(field in record)) return `missing field ${JSON.stringify(field)} (has ${fieldList(record)})`;
  return null;
}

// --- reading the file ------------------------------------------------------------------------------------

/** The spec in `text`; `fileName` names it in errors. Throws RecipeError naming file:line:col. */
export function parseCustomSuiteSpec(text: string, fileName: string): CustomSuiteSpec {
  return parseSpecSource(text, fileName).spec;
}

function parseSpecSource(text: string, fileName: string): { spec: CustomSuiteSpec; source: YamlSource } {
  const source = YamlSource.parse(text, fileName);
  if (source.data == null) throw locatedError(source, [{ keyPath: [], message: 'the custom suite file is empty' }]);
  const parsed = specSchema.safeParse(source.data);
  if (!parsed.success) throw locatedError(source, parsed.error.issues.flatMap((issue) => describeIssue(issue, source.data)));
  return { spec: parsed.data, source };
}

/** Reads the YAML file at `path` and its data (the first `limit` records), and builds the suite. */
export async function loadCustomSuite(path: string, options: { seed: number; limit?: number }): Promise<Suite> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    const reason = error.code === 'ENOENT' ? 'no such file' : error.message;
    throw new SlmError(`${path}: cannot read the custom suite: ${reason}`, { code: 'ERR_EVAL', cause: error });
  });
  const { spec, source } = parseSpecSource(text, path);
  const dataPath = resolve(dirname(path), spec.data);
  if (!(await pathExists(dataPath))) throw locatedError(source, [{ keyPath: ['data'], message: `no such file: ${dataPath}` }]);
  const records = await readFirstRecords(dataPath, spec.data, options.limit ?? Infinity);
  return customSuite(spec, { records, seed: options.seed, limit: options.limit });
}

/** Records named after `name`, the data path as the file writes it (ids stay the same on every machine). */
async function readFirstRecords(path: string, name: string, limit: number): Promise<CustomRecord[]> {
  const records: CustomRecord[] = [];
  if (!(limit > 0)) return records;
  for await (const record of readRecords(path)) {
    records.push({ id: recordPosition(name, record), value: record.value });
    if (records.length >= limit) break;
  }
  return records;
}

type Issue = z.core.$ZodIssue;

function describeIssue(issue: Issue, data: unknown): Problem[] {
  const keyPath = issue.path.map((key) => (typeof key === 'number' ? key : String(key)));
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => unknownKey(keyPath, key));
  const given = valueAt(data, keyPath);
  if (issue.code === 'invalid_type') {
    const expected = `expected ${typeNoun(issue.expected)}`;
    return [{ keyPath, message: given === undefined ? `required, ${expected}` : `${expected}, got ${quote(given)}` }];
  }
  if (issue.code === 'invalid_value') return [{ keyPath, message: `expected one of ${issue.values.join(' | ')}, got ${quote(given)}` }];
  return [{ keyPath, message: issue.message }];
}

function unknownKey(parent: KeyPath, key: string): Problem {
  const allowed = ALLOWED_KEYS[formatKeyPath(parent)] ?? [];
  const suggestion = closestMatch(key, allowed);
  const hint = suggestion ? `did you mean ${suggestion}?` : `allowed: ${allowed.join(', ')}`;
  return { keyPath: [...parent, key], message: `unknown key (${hint})`, target: 'key' };
}

// --- the suite -------------------------------------------------------------------------------------------

export interface CustomRecord {
  /** Where the record comes from, e.g. `capitals.jsonl:3`: the document's id and the prefix of its errors. */
  id: string;
  value: Readonly<Record<string, unknown>>;
}

export interface CustomSuiteOptions {
  records: readonly CustomRecord[];
  /** Recorded with the results; the suite's prompts involve no randomness. */
  seed: number;
  /** Evaluate only the first `limit` records. */
  limit?: number;
}

export function customSuite(spec: CustomSuiteSpec, options: CustomSuiteOptions): Suite {
  const { limit } = options;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) fail(spec, `limit must be a non-negative integer, got ${limit}`);
  const scoring = scoringOf(spec);
  const context = fewshotContext(spec);
  const records = options.records.slice(0, limit ?? options.records.length);
  const shots = spec.fewshot?.examples.length ?? 0;
  return {
    name: spec.name,
    version: spec.version,
    promptStyle: shots > 0 ? `${shots}-shot` : 'zero-shot',
    shots,
    seed: options.seed,
    documents: records.map((record) => scoring.document(record, context + renderTemplate(spec.prompt, record.value, record.id))),
    score: scoring.score,
    primaryMetric: scoring.metric,
  };
}

function fail(spec: CustomSuiteSpec, message: string): never {
  throw new SlmError(`${spec.name}: ${message}`, { code: 'ERR_EVAL' });
}

/** How documents of one kind are asked and scored. */
interface Scoring {
  metric: string;
  document(record: CustomRecord, prompt: string): EvalDocument;
  score(document: EvalDocument, response: EvalResponse): DocumentScore;
}

function scoringOf(spec: CustomSuiteSpec): Scoring {
  // The file's schema asks for exactly one; a spec built in code may not have one.
  if (spec.choices && !spec.generate) return choiceScoring(spec, spec.choices);
  if (spec.generate && !spec.choices) return generateScoring(spec, spec.generate);
  fail(spec, 'needs exactly one of choices and generate');
}

/** The answered examples, each followed by the separator: what comes before every document's prompt. */
function fewshotContext(spec: CustomSuiteSpec): string {
  if (!spec.fewshot) return '';
  const { examples, separator, target_template: targetTemplate } = spec.fewshot;
  return examples
    .map((example, i) => {
      const where = `${spec.name}: fewshot.examples[${i}]`;
      const target = targetTemplate !== undefined ? renderTemplate(targetTemplate, example, where) : defaultShotTarget(spec, example, where);
      return renderTemplate(spec.prompt, example, where) + target + separator;
    })
    .join('');
}

function defaultShotTarget(spec: CustomSuiteSpec, example: Readonly<Record<string, unknown>>, where: string): string {
  if (!spec.choices) return ` ${fieldText(example, spec.target_field, where)}`;
  const choices = choicesOf(spec.choices, example, where);
  return spec.choices.prefix + choices[correctChoice(spec.choices, choices, example, spec.target_field, where)];
}

/** Log-likelihood of each choice after the prompt; right when the likeliest is the target (metric acc). */
function choiceScoring(spec: CustomSuiteSpec, choices: ChoicesSpec): Scoring {
  return {
    metric: 'acc',
    document: (record, prompt) => {
      const list = choicesOf(choices, record.value, record.id);
      const correct = correctChoice(choices, list, record.value, spec.target_field, record.id);
      const continuations = list.map((choice) => choices.prefix + choice);
      return { id: record.id, request: { kind: 'loglikelihood', context: prompt, continuations }, target: list[correct], doc: record.value };
    },
    score: (document, response) => {
      if (document.request.kind !== 'loglikelihood') throw new Error(`${document.id}: expected a loglikelihood request`);
      const { continuations } = document.request;
      const best = argmax(continuationLogprobs(response, document.id, continuations.length));
      const choice = continuations[best].slice(choices.prefix.length);
      return { metrics: { acc: Number(choice === document.target) }, extracted: { choice } };
    },
  };
}

const GENERATE_METRICS: Record<GenerateSpec['match'], string> = { exact: 'exact_match', contains: 'contains', numeric: 'numeric_match' };

/** Greedy generation compared with the target as `match` says. */
function generateScoring(spec: CustomSuiteSpec, generate: GenerateSpec): Scoring {
  const metric = GENERATE_METRICS[generate.match];
  const extract = generate.extract !== undefined ? new RegExp(generate.extract) : null;
  return {
    metric,
    document: (record, prompt) => {
      const target = fieldText(record.value, spec.target_field, record.id);
      if (generate.match === 'numeric' && parseNumber(target) === null) {
        const field = JSON.stringify(spec.target_field);
        throw new DatasetError(`${record.id}: field ${field} must be a number for match: numeric, got ${JSON.stringify(target)}`);
      }
      return { id: record.id, request: { kind: 'generate', prompt, stop: generate.stop, maxTokens: generate.max_tokens }, target, doc: record.value };
    },
    score: (document, response) => {
      const output = generatedText(response, document.id);
      const answer = extract ? (extract.exec(output)?.[1] ?? null) : output;
      return { metrics: { [metric]: Number(answer !== null && matches(generate, answer, document.target)) }, extracted: { answer } };
    },
  };
}

function matches(generate: GenerateSpec, answer: string, target: string): boolean {
  if (generate.match === 'numeric') {
    const [value, expected] = [lastNumber(answer), parseNumber(target)];
    return value !== null && expected !== null && Math.abs(value - expected) <= (generate.tolerance ?? 0);
  }
  const fold = (text: string) => (generate.ignore_case ? text.trim().toLowerCase() : text.trim());
  return generate.match === 'exact' ? fold(answer) === fold(target) : fold(answer).includes(fold(target));
}

const NUMBER = /-?(?:\d[\d,]*(?:\.\d+)?|\.\d+)/g;

/** The last number written in `text` (thousands commas allowed), or null. */
function lastNumber(text: string): number | null {
  const last = text.match(NUMBER)?.at(-1);
  return last === undefined ? null : Number(last.replaceAll(',', ''));
}

/** A target such as `1,234`, `$5` or `-0.5` as a number; null when it is not one. */
function parseNumber(text: string): number | null {
  const plain = text.replaceAll(',', '').replace('$', '').trim();
  const value = plain === '' ? NaN : Number(plain);
  return Number.isFinite(value) ? value : null;
}

// --- records and templates -------------------------------------------------------------------------------

const PLACEHOLDER = /\{\{\s*([^{}\s]+)\s*\}\}/g;

function templateFields(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((match) => match[1]);
}

/** `template` with each `{{field}}` replaced by the record's field; `where` names the record in errors. */
function renderTemplate(template: string, record: Readonly<Record<string, unknown>>, where: string): string {
  return template.replace(PLACEHOLDER, (_, field: string) => fieldText(record, field, where));
}

function fieldText(record: Readonly<Record<string, unknown>>, field: string, where: string): string {
  const problem = missingField(record, field);
  if (problem) throw new DatasetError(`${where}: ${problem}`);
  const value = record[field];
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  throw new DatasetError(`${where}: field ${JSON.stringify(field)} must be text or a number, got ${quote(value)}`);
}

function choicesOf(choices: ChoicesSpec, record: Readonly<Record<string, unknown>>, where: string): string[] {
  if (choices.list) return choices.list;
  const field = choices.field!;
  const problem = missingField(record, field);
  if (problem) throw new DatasetError(`${where}: ${problem}`);
  // A CSV cell cannot hold a list: accept one written as JSON text.
  const value = typeof record[field] === 'string' ? parseJson(record[field]) : record[field];
  if (!Array.isArray(value) || value.length < 2 || !value.every((choice) => typeof choice === 'string' || typeof choice === 'number')) {
    throw new DatasetError(`${where}: field ${JSON.stringify(field)} must be a list of at least 2 choices, got ${JSON.stringify(record[field])}`);
  }
  return value.map(String);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function correctChoice(choices: ChoicesSpec, list: readonly string[], record: Readonly<Record<string, unknown>>, targetField: string, where: string): number {
  const target = fieldText(record, targetField, where);
  const index = choices.target_is === 'index' ? (/^\s*\d+\s*$/.test(target) ? Number(target) : -1) : list.indexOf(target);
  if (index < 0 || index >= list.length) {
    const expected = choices.target_is === 'index' ? `an index 0..${list.length - 1}` : `one of ${JSON.stringify(list)}`;
    throw new DatasetError(`${where}: field ${JSON.stringify(targetField)} must be ${expected}, got ${JSON.stringify(target)}`);
  }
  return index;
}

function fieldList(record: Readonly<Record<string, unknown>>): string {
  return `[${Object.keys(record)
    .map((key) => JSON.stringify(key))
    .join(', ')}]`;
}
