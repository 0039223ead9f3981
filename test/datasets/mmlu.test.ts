import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Field, Int64, List, Table, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatasetError } from '../../datasets/errors.ts';
import { MMLU_LETTERS, mmluSubjectName, readMmlu } from '../../datasets/mmlu.ts';
import type { MmluQuestion } from '../../datasets/mmlu.ts';
import { minimalParquet } from './minimal-parquet.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmlu-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fixture(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, name);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content);
  return path;
}

type Sample = Omit<MmluQuestion, 'source'>;

// Own content in the shape of hendrycks/test rows; the second has a comma and a quote, the third a newline.
const ALGEBRA: Sample[] = [
  { subject: 'abstract_algebra', question: 'Find the order of the element 2 in Z_5.', choices: ['1', '2', '4', '5'], answer: 2 },
  {
    subject: 'abstract_algebra',
    question: 'Statement 1 | Every group of order 4 is abelian, "always". Statement 2 | Z_6 is cyclic.',
    choices: ['True, True', 'False, False', 'True, False', 'False, True'],
    answer: 0,
  },
];
const PHYSICS: Sample[] = [
  {
    subject: 'high_school_physics',
    question: 'A ball is dropped from rest.\nWhat is its speed after 2 s (g = 10 m/s^2)?',
    choices: ['5 m/s', '10 m/s', '20 m/s', '40 m/s'],
    answer: 2,
  },
];

const csvCell = (text: string): string => (/[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);
const headerlessCsv = (samples: Sample[]): string =>
  samples.map((s) => [s.question, ...s.choices, MMLU_LETTERS[s.answer]].map(csvCell).join(',')).join('\n') + '\n';
const jsonl = (records: unknown[]): string => records.map((record) => JSON.stringify(record)).join('\n') + '\n';
const withoutSource = (questions: MmluQuestion[]): Sample[] => questions.map(({ source, ...rest }) => rest);

/** root/{dev,test}/<subject>_<split>.csv as in the hendrycks/test tarball. */
async function hendrycksFolder(): Promise<string> {
  const root = join(dir, 'data');
  await fixture('data/test/high_school_physics_test.csv', headerlessCsv(PHYSICS));
  await fixture('data/test/abstract_algebra_test.csv', headerlessCsv(ALGEBRA));
  await fixture('data/dev/abstract_algebra_dev.csv', headerlessCsv([ALGEBRA[1]]));
  return root;
}

describe('mmluSubjectName', () => {
  it('drops the folder, the extension and the split suffix', () => {
    expect(mmluSubjectName('data/test/high_school_us_history_test.csv')).toBe('high_school_us_history');
    expect(mmluSubjectName('college_physics_dev.csv')).toBe('college_physics');
    expect(mmluSubjectName('virology_val.csv')).toBe('virology');
    expect(mmluSubjectName('my_quiz.jsonl')).toBe('my_quiz');
  });
});

describe('readMmlu: hendrycks/test layout', () => {
  it('reads headerless rows with quoting, subjects from file names, sorted by subject, file:line sources', async () => {
    const root = await hendrycksFolder();
    const questions = await readMmlu(root);
    expect(withoutSource(questions)).toEqual([...ALGEBRA, ...PHYSICS]);
    expect(questions.map((q) => q.source)).toEqual([
      join(root, 'test/abstract_algebra_test.csv:1'),
      join(root, 'test/abstract_algebra_test.csv:2'),
      join(root, 'test/high_school_physics_test.csv:1'),
    ]);
  });

  it('reads the requested split, a split folder given directly, and a single file', async () => {
    const root = await hendrycksFolder();
    expect(withoutSource(await readMmlu(root, { split: 'dev' }))).toEqual([ALGEBRA[1]]);
    expect(withoutSource(await readMmlu(join(root, 'test')))).toEqual([...ALGEBRA, ...PHYSICS]);
    expect(withoutSource(await readMmlu(join(root, 'test/high_school_physics_test.csv')))).toEqual(PHYSICS);
    await expect(readMmlu(root, { split: 'val' })).rejects.toThrow(`${root}: no MMLU files for split "val"`);
  });

  it('keeps only the requested subjects and refuses one the data lacks', async () => {
    const root = await hendrycksFolder();
    expect(withoutSource(await readMmlu(root, { subjects: ['high_school_physics'] }))).toEqual(PHYSICS);
    await expect(readMmlu(root, { subjects: ['virology', 'abstract_algebra'] })).rejects.toThrow(
      `${root}: no questions for subject(s) virology (found abstract_algebra, high_school_physics)`,
    );
  });

  it('returns the first questions after sorting when limited', async () => {
    const root = await hendrycksFolder();
    expect(withoutSource(await readMmlu(root, { limit: 1 }))).toEqual([ALGEBRA[0]]);
    expect(await readMmlu(root, { limit: 0 })).toEqual([]);
    await expect(readMmlu(root, { limit: -2 })).rejects.toThrow(RangeError);
  });

  it('names file:line for a bad answer letter or a wrong number of columns', async () => {
    const badLetter = await fixture('x/anatomy_test.csv', 'Q1,a,b,c,d,B\n\n"Q2, long",a,b,c,d,E\n');
    const error = await readMmlu(badLetter).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as Error).message).toBe(`${badLetter}:3: answer "E" is not one of A, B, C, D`);

    const short = await fixture('y/anatomy_test.csv', 'Q1,a,b,c,d,B\nQ2,a,b,c,D\n');
    await expect(readMmlu(short)).rejects.toThrow(
      `${short}:2: 5 columns instead of 6 (question,A,B,C,D,answer, no header row)`,
    );

    const unclosed = await fixture('z/anatomy_test.csv', 'Q1,a,b,c,d,B\n"Q2,a,b,c,d,A\n');
    await expect(readMmlu(unclosed)).rejects.toThrow(/anatomy_test\.csv(:\d+)?: invalid CSV/);
  });
});

describe('readMmlu: column-named files', () => {
  const all = [...PHYSICS, ...ALGEBRA]; // out of subject order on purpose

  it('gives the same questions from JSONL, CSV with a header, Parquet and Arrow as from headerless CSV', async () => {
    const expected = withoutSource(await readMmlu(await hendrycksFolder()));

    const fromJsonl = await fixture('hf.jsonl', jsonl(all));
    const csvRows = (cells: (s: Sample) => string[]) => all.map((s) => cells(s).map(csvCell).join(',')).join('\n');
    const letterRows = csvRows((s) => [s.question, s.subject, ...s.choices, MMLU_LETTERS[s.answer]]);
    const fromCsv = await fixture('letters.csv', `question,subject,A,B,C,D,answer\n${letterRows}\n`);
    const jsonRows = csvRows((s) => [s.question, s.subject, JSON.stringify(s.choices), String(s.answer)]);
    const fromCsvJsonChoices = await fixture('json-choices.csv', `question,subject,choices,answer\n${jsonRows}\n`);
    const fromParquet = await fixture(
      'hf.parquet',
      minimalParquet([
        { name: 'question', type: 'utf8', values: all.map((s) => s.question) },
        { name: 'subject', type: 'utf8', values: all.map((s) => s.subject) },
        ...MMLU_LETTERS.map((letter, i) => ({ name: letter, type: 'utf8' as const, values: all.map((s) => s.choices[i]) })),
        { name: 'answer', type: 'int32', values: all.map((s) => s.answer) },
      ]),
    );
    const table = new Table({
      question: vectorFromArray(all.map((s) => s.question), new Utf8()),
      subject: vectorFromArray(all.map((s) => s.subject), new Utf8()),
      choices: vectorFromArray(all.map((s) => [...s.choices]), new List(new Field('item', new Utf8()))),
      answer: vectorFromArray(all.map((s) => BigInt(s.answer)), new Int64()),
    });
    const fromArrow = await fixture('hf.arrow', tableToIPC(table, 'file'));

    for (const path of [fromJsonl, fromCsv, fromCsvJsonChoices, fromParquet, fromArrow]) {
      expect(withoutSource(await readMmlu(path)), path).toEqual(expected);
    }
    expect((await readMmlu(fromCsv)).map((q) => q.source)).toEqual([`${fromCsv}:4`, `${fromCsv}:5`, `${fromCsv}:2`]);
    expect((await readMmlu(fromParquet)).map((q) => q.source)).toEqual([1, 2, 0].map((row) => `${fromParquet}: row ${row}`));
  });

  it('picks cais/mmlu split shards in a folder, and takes the subject from the file name when there is no column', async () => {
    const folder = join(dir, 'all');
    await fixture('all/test-00000-of-00001.jsonl', jsonl(all));
    await fixture('all/validation-00000-of-00001.jsonl', jsonl(PHYSICS));
    await fixture('all/auxiliary_train-00000-of-00001.jsonl', jsonl([{ question: 'not MMLU' }]));
    expect(withoutSource(await readMmlu(folder))).toEqual([...ALGEBRA, ...PHYSICS]);
    expect(withoutSource(await readMmlu(folder, { split: 'val' }))).toEqual(PHYSICS);

    const lettered = { question: 'Q', A: 'a', B: 'b', C: 'c', D: 'd', answer: 'd' };
    const unnamed = await fixture('quiz/virology_test.jsonl', jsonl([lettered]));
    expect(withoutSource(await readMmlu(unnamed))).toEqual([
      { subject: 'virology', question: 'Q', choices: ['a', 'b', 'c', 'd'], answer: 3 },
    ]);
  });

  it('names the record and what was expected for bad fields', async () => {
    const cases: [unknown, string][] = [
      [{ question: 'Q', choices: ['a', 'b', 'c', 'd'], answer: 4 }, 'field "answer" must be 0-3 or A-D, got 4'],
      [{ question: 'Q', choices: ['a', 'b', 'c', 'd'], answer: 'E' }, 'answer "E" is not one of A, B, C, D'],
      [{ question: 'Q', choices: ['a', 'b', 'c', 'd'] }, 'missing field "answer" (0-3 or A-D)'],
      [{ question: 'Q', choices: ['a', 'b', 'c'], answer: 0 }, 'field "choices" must be a list of 4 strings, got ["a","b","c"]'],
      [{ question: 'Q', A: 'a', B: 'b', answer: 0 }, 'missing field "choices" (or columns A, B, C, D) (record has ["question", "A", "B", "answer"])'],
      [{ question: 7, choices: ['a', 'b', 'c', 'd'], answer: 0 }, 'field "question" must be a string, got 7'],
      [{ choices: ['a', 'b', 'c', 'd'], answer: 0 }, 'missing field "question" (record has ["choices", "answer"])'],
    ];
    for (const [i, [record, message]] of cases.entries()) {
      const path = await fixture(`bad${i}.jsonl`, jsonl([{ question: 'ok', choices: ['a', 'b', 'c', 'd'], answer: 1 }, record]));
      await expect(readMmlu(path), message).rejects.toThrow(`${path}:2: ${message}`);
    }
  });

  it('refuses a file without questions or of an unknown kind', async () => {
    const empty = await fixture('empty_test.csv', '');
    await expect(readMmlu(empty)).rejects.toThrow(`${empty}: no MMLU questions`);
    const text = await fixture('notes.txt', 'hello');
    await expect(readMmlu(text)).rejects.toThrow(/cannot tell the format from extension/);
    await expect(readMmlu(join(dir, 'missing'))).rejects.toThrow(DatasetError);
  });
});
