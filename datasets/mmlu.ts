/**
 * MMLU questions in the two layouts people download:
 * - hendrycks/test: headerless CSV rows `question,A,B,C,D,answer` (answer a letter), one file per subject
 *   and split, `<split>/<subject>_<split>.csv`; the subject comes from the file name.
 * - column-named files like the Hugging Face `cais/mmlu` dataset (Parquet, JSONL, Arrow, CSV with a header):
 *   `question`, `subject`, `choices` (4 strings) and `answer` (0-3); columns `A`..`D` and an answer
 *   letter are accepted too.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { DatasetError } from './errors.ts';
import { formatFromExtension, readRecords, recordPosition } from './readers.ts';
import type { DatasetRecord } from './readers.ts';

export const MMLU_LETTERS = ['A', 'B', 'C', 'D'] as const;

export type MmluSplit = 'dev' | 'val' | 'test';

export interface MmluQuestion {
  /** snake_case as in the file names and cais/mmlu, e.g. `high_school_physics`. */
  subject: string;
  question: string;
  choices: [string, string, string, string];
  /** Index of the correct choice, 0..3 (A..D). */
  answer: number;
  /** `file:line` (CSV, JSONL) or `file: row N` (Parquet, Arrow). */
  source: string;
}

export interface ReadMmluOptions {
  /** Which split a folder is read for; default `test`. A file path is read whatever its split. */
  split?: MmluSplit;
  /** Keep only these subjects; naming one the data lacks is an error. */
  subjects?: string[];
  /** At most this many questions, the first after sorting by subject. */
  limit?: number;
}

const HEADERLESS_COLUMNS = ['question', ...MMLU_LETTERS, 'answer'];
const SPLIT_SUFFIX = /_(dev|val|test)$/;
/** cais/mmlu shards: `test-00000-of-00001.parquet`, `validation-...`, `dev-...`. */
const HF_SPLIT_PREFIX = /^(dev|validation|test)-/;

/**
 * Questions sorted by subject (code-unit order), each subject's rows in file order. `path` is a file, or a
 * folder: its `<split>/` subfolder when it has one (the hendrycks layout), else the files in it.
 */
export async function readMmlu(path: string, options: ReadMmluOptions = {}): Promise<MmluQuestion[]> {
  const { split = 'test', subjects, limit = Infinity } = options;
  if (limit !== Infinity && (!Number.isInteger(limit) || limit < 0)) {
    throw new RangeError(`limit: expected a non-negative integer, got ${limit}`);
  }
  const files = (await isFolder(path)) ? await splitFiles(path, split) : [path];
  const questions: MmluQuestion[] = [];
  for (const file of files) {
    for (const question of await readMmluFile(file)) questions.push(question);
  }
  if (questions.length === 0) throw new DatasetError(`${path}: no MMLU questions`);
  const kept = subjects ? keepSubjects(questions, subjects, path) : questions;
  // Array.prototype.sort is stable, so rows keep their file order within a subject.
  return kept.sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0)).slice(0, limit);
}

/** `abstract_algebra_test.csv` -> `abstract_algebra`: the base name without extension and split suffix. */
export function mmluSubjectName(fileName: string): string {
  return basename(fileName, extname(fileName)).replace(SPLIT_SUFFIX, '');
}

async function isFolder(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (error) {
    throw new DatasetError(`${path}: cannot read (${(error as Error).message})`);
  }
}

/**
 * The folder's `<split>/` subfolder if it has one. Among plain files, those whose names carry a split
 * (`x_test.csv`, `test-00000-of-00001.parquet`) are kept when it is the requested one; when no name carries
 * a split, all are read.
 */
async function splitFiles(folder: string, split: MmluSplit): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true });
  if (entries.some((entry) => entry.isDirectory() && entry.name === split)) return splitFiles(join(folder, split), split);
  const names = entries.filter((entry) => entry.isFile() && isDatasetFile(entry.name)).map((entry) => entry.name);
  const anySplit = names.some((name) => splitOfFileName(name) !== null);
  const chosen = names.filter((name) => !anySplit || splitOfFileName(name) === split).sort();
  if (chosen.length === 0) {
    const expected = `${split}/<subject>_${split}.csv or <subject>_${split}.<ext>`;
    throw new DatasetError(`${folder}: no MMLU files for split "${split}" (expected ${expected})`);
  }
  return chosen.map((name) => join(folder, name));
}

function isDatasetFile(name: string): boolean {
  try {
    formatFromExtension(name);
    return true;
  } catch {
    return false;
  }
}

function splitOfFileName(name: string): MmluSplit | null {
  const stem = basename(name, extname(name));
  const split = SPLIT_SUFFIX.exec(stem)?.[1] ?? HF_SPLIT_PREFIX.exec(stem)?.[1];
  if (split === undefined) return null;
  return split === 'validation' ? 'val' : (split as MmluSplit);
}

function keepSubjects(questions: MmluQuestion[], subjects: string[], path: string): MmluQuestion[] {
  const present = new Set(questions.map((q) => q.subject));
  const missing = subjects.filter((subject) => !present.has(subject));
  if (missing.length > 0) {
    const found = [...present].sort().join(', ');
    throw new DatasetError(`${path}: no questions for subject(s) ${missing.join(', ')} (found ${found})`);
  }
  const wanted = new Set(subjects);
  return questions.filter((q) => wanted.has(q.subject));
}

async function readMmluFile(path: string): Promise<MmluQuestion[]> {
  const questions: MmluQuestion[] = [];
  if (formatFromExtension(path) === 'csv' && !(await csvHasHeader(path))) {
    const subject = mmluSubjectName(path);
    for await (const row of readRecords(path, { csvHeader: false })) questions.push(headerlessQuestion(row, subject, path));
  } else {
    for await (const record of readRecords(path)) questions.push(namedQuestion(record, path));
  }
  return questions;
}

// --- hendrycks/test: headerless CSV -------------------------------------------------------------------

/** A cais/mmlu-style CSV names its columns; a hendrycks row never has cells "question" and "answer". */
async function csvHasHeader(path: string): Promise<boolean> {
  for await (const { value } of readRecords(path, { csvHeader: false })) {
    const names = cellsOf(value).map((cell) => cell.trim().toLowerCase());
    return names.includes('question') && names.includes('answer');
  }
  return false;
}

function headerlessQuestion(row: DatasetRecord, subject: string, path: string): MmluQuestion {
  const source = recordPosition(path, row);
  const cells = cellsOf(row.value);
  if (cells.length !== HEADERLESS_COLUMNS.length) {
    throw new DatasetError(
      `${source}: ${cells.length} columns instead of ${HEADERLESS_COLUMNS.length} (${HEADERLESS_COLUMNS.join(',')}, no header row)`,
    );
  }
  const [question, a, b, c, d, letter] = cells;
  return { subject, question, choices: [a, b, c, d], answer: letterIndex(letter, source), source };
}

/** A headerless CSV record's cells in column order (its keys are positions, which objects keep in order). */
function cellsOf(value: DatasetRecord['value']): string[] {
  return Object.values(value) as string[];
}

// --- column-named files (cais/mmlu and the like) ---------------------------------------------------------

function namedQuestion(record: DatasetRecord, path: string): MmluQuestion {
  const source = recordPosition(path, record);
  const value = record.value;
  const question = requiredString(value, 'question', source);
  const subject = typeof value.subject === 'string' && value.subject !== '' ? value.subject : mmluSubjectName(path);
  return { subject, question, choices: namedChoices(value, source), answer: namedAnswer(value.answer, source), source };
}

function namedChoices(value: Record<string, unknown>, source: string): MmluQuestion['choices'] {
  if (!('choices' in value)) {
    if (MMLU_LETTERS.every((letter) => letter in value)) {
      const [a, b, c, d] = MMLU_LETTERS.map((letter) => requiredString(value, letter, source));
      return [a, b, c, d];
    }
    throw new DatasetError(`${source}: missing field "choices" (or columns A, B, C, D) (record has [${fieldList(value)}])`);
  }
  // A CSV cannot hold a list: accept one written as JSON text.
  const choices = typeof value.choices === 'string' ? parseJsonList(value.choices) : value.choices;
  if (!Array.isArray(choices) || choices.length !== 4 || !choices.every((choice) => typeof choice === 'string')) {
    throw new DatasetError(`${source}: field "choices" must be a list of 4 strings, got ${JSON.stringify(value.choices)}`);
  }
  return [choices[0], choices[1], choices[2], choices[3]];
}

function parseJsonList(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** cais/mmlu stores the index (0-3); letters and, from CSV, index digits are accepted too. */
function namedAnswer(answer: unknown, source: string): number {
  if (answer === undefined) throw new DatasetError(`${source}: missing field "answer" (0-3 or A-D)`);
  if (typeof answer === 'number') {
    if (Number.isInteger(answer) && answer >= 0 && answer < MMLU_LETTERS.length) return answer;
    throw new DatasetError(`${source}: field "answer" must be 0-3 or A-D, got ${answer}`);
  }
  if (typeof answer === 'string' && /^\s*[0-3]\s*$/.test(answer)) return Number(answer);
  if (typeof answer === 'string') return letterIndex(answer, source);
  throw new DatasetError(`${source}: field "answer" must be 0-3 or A-D, got ${JSON.stringify(answer)}`);
}

function letterIndex(letter: string, source: string): number {
  const index = MMLU_LETTERS.indexOf(letter.trim().toUpperCase() as (typeof MMLU_LETTERS)[number]);
  if (index < 0) throw new DatasetError(`${source}: answer ${JSON.stringify(letter)} is not one of A, B, C, D`);
  return index;
}

function requiredString(value: Record<string, unknown>, name: string, source: string): string {
  if (!(name in value)) {
    throw new DatasetError(`${source}: missing field ${JSON.stringify(name)} (record has [${fieldList(value)}])`);
  }
  const field = value[name];
  if (typeof field !== 'string') {
    throw new DatasetError(`${source}: field ${JSON.stringify(name)} must be a string, got ${JSON.stringify(field)}`);
  }
  return field;
}

function fieldList(value: Record<string, unknown>): string {
  return Object.keys(value)
    .map((key) => JSON.stringify(key))
    .join(', ');
}
