/**
 * GSM8K problems (openai/grade-school-math): records `{question, answer}` where `answer` is a worked
 * solution whose last line is `#### <final number>`. JSONL as published, or CSV/Parquet/Arrow with the same
 * columns (as on the Hugging Face hub).
 */
import { writeFile } from 'node:fs/promises';
import { DatasetError } from './errors.ts';
import { readRecords, recordPosition } from './readers.ts';
import { mapFields } from './record-fields.ts';

export interface Gsm8kProblem {
  question: string;
  /** The answer text before the last `####`, trimmed: the worked solution a few-shot prompt shows. */
  solution: string;
  /** The final answer as written after `####`, commas removed and trimmed, e.g. `1234` or `-5`. */
  answer: string;
  /** The `answer` field as the data has it (commas kept), which the harness's shots and targets show. */
  answerText: string;
  /** `file:line` (JSONL, CSV) or `file: row N` (Parquet, Arrow). */
  source: string;
}

const FINAL_ANSWER_MARK = '####';

/** Problems in file order; `limit` stops reading after that many. */
export async function readGsm8k(path: string, options: { limit?: number } = {}): Promise<Gsm8kProblem[]> {
  const limit = options.limit ?? Infinity;
  if (limit !== Infinity && (!Number.isInteger(limit) || limit < 0)) {
    throw new RangeError(`limit: expected a non-negative integer, got ${limit}`);
  }
  const problems: Gsm8kProblem[] = [];
  if (limit === 0) return problems;
  for await (const record of readRecords(path)) {
    problems.push(toProblem(record.value, recordPosition(path, record)));
    if (problems.length >= limit) break;
  }
  if (problems.length === 0) {
    throw new DatasetError(`${path}: no GSM8K problems (expected records with "question" and "answer")`);
  }
  return problems;
}

/**
 * The text after the last `####`, with commas removed (GSM8K writes `#### 1,234` now and then) and
 * whitespace trimmed; null when there is no `####` or nothing follows it.
 */
export function gsm8kFinalAnswer(answerText: string): string | null {
  const mark = answerText.lastIndexOf(FINAL_ANSWER_MARK);
  if (mark < 0) return null;
  const answer = answerText.slice(mark + FINAL_ANSWER_MARK.length).replaceAll(',', '').trim();
  return answer === '' ? null : answer;
}

function toProblem(record: Record<string, unknown>, source: string): Gsm8kProblem {
  const { prompt: question, response: answerText } = mapFields(record, { prompt: 'question', response: 'answer' }, source);
  const answer = gsm8kFinalAnswer(answerText);
  if (answer === null) {
    const got = JSON.stringify(tail(answerText));
    throw new DatasetError(`${source}: field "answer" must end with a "#### <number>" line, got ${got}`);
  }
  const solution = answerText.slice(0, answerText.lastIndexOf(FINAL_ANSWER_MARK)).trim();
  return { question, solution, answer, answerText, source };
}

/** The end of a long answer, enough to see what its last line holds. */
function tail(text: string): string {
  return text.length <= 60 ? text : `...${text.slice(-60)}`;
}

/** Problems as GSM8K JSON Lines, one `{"question", "answer"}` per line: what `readGsm8k` reads. */
export function gsm8kJsonl(problems: ReadonlyArray<{ question: string; answer: string }>): string {
  return problems.map(({ question, answer }) => `${JSON.stringify({ question, answer })}\n`).join('');
}

export async function writeGsm8kJsonl(path: string, problems: ReadonlyArray<{ question: string; answer: string }>): Promise<void> {
  await writeFile(path, gsm8kJsonl(problems), 'utf8');
}
