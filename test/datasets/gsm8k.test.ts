import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatasetError } from '../../datasets/errors.ts';
import { gsm8kFinalAnswer, readGsm8k } from '../../datasets/gsm8k.ts';
import { minimalParquet } from './minimal-parquet.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gsm8k-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fixture(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

// Shaped like openai/grade-school-math train.jsonl lines (calculator annotations, `#### N` last), own content.
const PROBLEMS = [
  {
    question: 'Mia bakes 18 muffins in the morning and twice as many in the afternoon. How many muffins does she bake?',
    answer: 'In the afternoon Mia bakes 18*2 = <<18*2=36>>36 muffins.\nIn total she bakes 18+36 = <<18+36=54>>54 muffins.\n#### 54',
  },
  {
    question: 'A farm sells 1,050 eggs a week at $0.25 each, plus 184 more eggs on holidays. How many eggs is that?',
    answer: 'The farm sells 1,050+184 = <<1050+184=1234>>1,234 eggs.\n#### 1,234',
  },
  {
    question: 'The temperature is 3 degrees and falls by 10 degrees overnight. What is it in the morning?',
    answer: 'It is 3-10 = <<3-10=-7>>-7 degrees.\n#### -7',
  },
];

const jsonl = (records: unknown[]): string => records.map((record) => JSON.stringify(record)).join('\n') + '\n';

describe('gsm8kFinalAnswer', () => {
  it('takes the text after the last ####, without commas or surrounding whitespace', () => {
    expect(gsm8kFinalAnswer('So 2 + 2 = 4.\n#### 4')).toBe('4');
    expect(gsm8kFinalAnswer('#### 1,234,567\n')).toBe('1234567');
    expect(gsm8kFinalAnswer('x\n####   -12  ')).toBe('-12');
    expect(gsm8kFinalAnswer('a #### 3 was a typo\n#### 5')).toBe('5');
    expect(gsm8kFinalAnswer('#### 0.50')).toBe('0.50');
  });

  it('is null when there is no #### or nothing after it', () => {
    expect(gsm8kFinalAnswer('The answer is 4.')).toBeNull();
    expect(gsm8kFinalAnswer('The answer is 4.\n####  \n')).toBeNull();
    expect(gsm8kFinalAnswer('')).toBeNull();
  });

  it('recovers any integer written with thousands separators', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e9, max: 1e9 }), fc.stringMatching(/^[a-z0-9 =+*<>.\n]*$/), (n, solution) => {
        expect(gsm8kFinalAnswer(`${solution}\n#### ${n.toLocaleString('en-US')}`)).toBe(String(n));
      }),
      { seed: 8 },
    );
  });
});

describe('readGsm8k', () => {
  it('reads JSONL problems: solution before ####, the final answer without commas, the answer as written, file:line', async () => {
    const path = await fixture('train.jsonl', jsonl(PROBLEMS));
    expect(await readGsm8k(path)).toEqual([
      {
        question: PROBLEMS[0].question,
        solution: 'In the afternoon Mia bakes 18*2 = <<18*2=36>>36 muffins.\nIn total she bakes 18+36 = <<18+36=54>>54 muffins.',
        answer: '54',
        answerText: PROBLEMS[0].answer,
        source: `${path}:1`,
      },
      {
        question: PROBLEMS[1].question,
        solution: 'The farm sells 1,050+184 = <<1050+184=1234>>1,234 eggs.',
        answer: '1234',
        answerText: PROBLEMS[1].answer,
        source: `${path}:2`,
      },
      { question: PROBLEMS[2].question, solution: 'It is 3-10 = <<3-10=-7>>-7 degrees.', answer: '-7', answerText: PROBLEMS[2].answer, source: `${path}:3` },
    ]);
  });

  it('stops reading at the limit', async () => {
    const path = await fixture('train.jsonl', jsonl([...PROBLEMS, { question: 'broken' }]));
    const problems = await readGsm8k(path, { limit: 2 });
    expect(problems.map((p) => p.answer)).toEqual(['54', '1234']);
    await expect(readGsm8k(path)).rejects.toThrow(`${path}:4: missing field "answer"`);
    await expect(readGsm8k(path, { limit: -1 })).rejects.toThrow(RangeError);
    await expect(readGsm8k(path, { limit: 1.5 })).rejects.toThrow('limit: expected a non-negative integer, got 1.5');
  });

  it('reads CSV with quoted commas and multi-line answers, naming the line each record starts on', async () => {
    const rows = PROBLEMS.map(({ question, answer }) => `"${question}","${answer}"`).join('\n');
    const path = await fixture('test.csv', `question,answer\n${rows}\n`);
    const problems = await readGsm8k(path);
    expect(problems.map((p) => [p.answer, p.source])).toEqual([
      ['54', `${path}:2`],
      ['1234', `${path}:5`],
      ['-7', `${path}:7`],
    ]);
    expect(problems[1].question).toBe(PROBLEMS[1].question);
  });

  it('reads Parquet with the same columns, naming rows', async () => {
    const path = await fixture(
      'test.parquet',
      minimalParquet([
        { name: 'question', type: 'utf8', values: PROBLEMS.map((p) => p.question) },
        { name: 'answer', type: 'utf8', values: PROBLEMS.map((p) => p.answer) },
      ]),
    );
    const fromJsonl = await readGsm8k(await fixture('same.jsonl', jsonl(PROBLEMS)));
    const fromParquet = await readGsm8k(path);
    expect(fromParquet.map(({ source, ...rest }) => rest)).toEqual(fromJsonl.map(({ source, ...rest }) => rest));
    expect(fromParquet.map((p) => p.source)).toEqual([0, 1, 2].map((row) => `${path}: row ${row}`));
  });

  it('names file:line and the problem for a missing ####, a missing or mistyped field', async () => {
    const noMark = await fixture('a.jsonl', jsonl([PROBLEMS[0], { question: 'q', answer: 'The answer is 4.' }]));
    const error = await readGsm8k(noMark).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as Error).message).toBe(`${noMark}:2: field "answer" must end with a "#### <number>" line, got "The answer is 4."`);

    const missing = await fixture('b.jsonl', jsonl([{ problem: 'q', answer: '#### 1' }]));
    await expect(readGsm8k(missing)).rejects.toThrow(`${missing}:1: missing field "question" (record has ["problem", "answer"])`);

    const mistyped = await fixture('c.jsonl', jsonl([{ question: 'q', answer: 4 }]));
    await expect(readGsm8k(mistyped)).rejects.toThrow(`${mistyped}:1: field "answer" must be a string, got number`);
  });

  it('refuses an empty file', async () => {
    const path = await fixture('empty.jsonl', '\n');
    await expect(readGsm8k(path)).rejects.toThrow(`${path}: no GSM8K problems`);
  });
});
