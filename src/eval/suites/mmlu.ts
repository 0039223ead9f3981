/**
 * MMLU as lm-evaluation-harness runs it (task mmlu, default variant): per subject, the header
 * `The following are multiple choice questions (with answers) about {subject}.\n\n`, then the first n dev
 * questions of that subject (its `first_n` sampler), each followed by ` {letter}\n\n`, then the question:
 *
 *   {question, stripped}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nAnswer:
 *
 * `loglikelihood` mode scores the continuations ` A` .. ` D` and takes the most likely (metric `acc`);
 * `generate` mode, for servers that cannot score given text, lets the model write a couple of tokens and
 * takes the first letter A-D it names.
 */
import { MMLU_LETTERS } from '../../../datasets/mmlu.ts';
import type { MmluQuestion } from '../../../datasets/mmlu.ts';
import { SlmError } from '../../util/errors.ts';
import { argmax, continuationLogprobs, extractChoiceLetter, generatedText, stripLikePython } from '../answers.ts';
import type { DocumentScore, EvalDocument, EvalRequest, EvalResponse, Suite } from '../suite.ts';

export type MmluMode = 'loglikelihood' | 'generate';

export interface MmluSuiteOptions {
  /** The questions to evaluate, in order (readMmlu sorts them by subject). */
  test: readonly MmluQuestion[];
  /** Where each subject's shots come from: its first `shots` questions here, in order. */
  dev: readonly MmluQuestion[];
  /** Default 5. */
  shots?: number;
  mode: MmluMode;
  /** Recorded with the results; MMLU's prompts involve no randomness. */
  seed: number;
  /** At most this many questions per subject, the first of each. */
  limit?: number;
}

const SUITE_VERSION = '1';
const DEFAULT_SHOTS = 5;
const CONTINUATIONS = MMLU_LETTERS.map((letter) => ` ${letter}`);
/** Enough for ` B`; the newline stop ends anything longer. */
const GENERATE_MAX_TOKENS = 2;

export function mmluSuite(options: MmluSuiteOptions): Suite {
  const { mode, seed, shots = DEFAULT_SHOTS } = options;
  checkOptions(options, shots);
  const devBySubject = groupBySubject(options.dev);
  const documents = firstPerSubject(options.test, options.limit ?? Infinity).map((question): EvalDocument => {
    const prompt = mmluPrompt(question, shotsFor(question.subject, devBySubject, shots));
    return {
      id: question.source,
      request: request(prompt, mode),
      target: MMLU_LETTERS[question.answer],
      groups: { subject: question.subject },
      doc: { question: question.question, subject: question.subject, choices: question.choices, answer: question.answer },
    };
  });
  return {
    name: 'mmlu',
    version: SUITE_VERSION,
    promptStyle: mode === 'loglikelihood' ? `${shots}-shot` : `${shots}-shot-generate`,
    shots,
    seed,
    documents,
    available: options.test.length,
    score: mode === 'loglikelihood' ? scoreLoglikelihood : scoreGeneration,
    primaryMetric: 'acc',
  };
}

/** The whole prompt for `question` after `shots` (questions of the same subject, answered). */
export function mmluPrompt(question: MmluQuestion, shots: readonly MmluQuestion[]): string {
  const header = `The following are multiple choice questions (with answers) about ${question.subject.replaceAll('_', ' ')}.\n\n`;
  const answered = shots.map((shot) => `${questionText(shot)} ${MMLU_LETTERS[shot.answer]}\n\n`).join('');
  return header + answered + questionText(question);
}

/** The harness's `doc_to_text`. */
function questionText(question: MmluQuestion): string {
  const choices = question.choices.map((choice, i) => `\n${MMLU_LETTERS[i]}. ${choice}`).join('');
  return `${stripLikePython(question.question)}${choices}\nAnswer:`;
}

function request(prompt: string, mode: MmluMode): EvalRequest {
  if (mode === 'loglikelihood') return { kind: 'loglikelihood', context: prompt, continuations: CONTINUATIONS };
  return { kind: 'generate', prompt, stop: ['\n'], maxTokens: GENERATE_MAX_TOKENS };
}

function checkOptions(options: MmluSuiteOptions, shots: number): void {
  const { limit } = options;
  if (!Number.isInteger(shots) || shots < 0) fail(`shots must be a non-negative integer, got ${shots}`);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) fail(`limit must be a non-negative integer, got ${limit}`);
}

function fail(message: string): never {
  throw new SlmError(`mmlu: ${message}`, { code: 'ERR_EVAL' });
}

function groupBySubject(questions: readonly MmluQuestion[]): Map<string, MmluQuestion[]> {
  const bySubject = new Map<string, MmluQuestion[]>();
  for (const question of questions) {
    const subject = bySubject.get(question.subject);
    if (subject) subject.push(question);
    else bySubject.set(question.subject, [question]);
  }
  return bySubject;
}

function firstPerSubject(questions: readonly MmluQuestion[], limit: number): MmluQuestion[] {
  const taken = new Map<string, number>();
  return questions.filter((question) => {
    const count = taken.get(question.subject) ?? 0;
    taken.set(question.subject, count + 1);
    return count < limit;
  });
}

function shotsFor(subject: string, devBySubject: ReadonlyMap<string, MmluQuestion[]>, shots: number): MmluQuestion[] {
  if (shots === 0) return [];
  const dev = devBySubject.get(subject) ?? [];
  if (dev.length < shots) fail(`subject "${subject}" has ${dev.length} dev questions, fewer than the ${shots} shots asked for`);
  return dev.slice(0, shots);
}

function scoreLoglikelihood(document: EvalDocument, response: EvalResponse): DocumentScore {
  const choice = MMLU_LETTERS[argmax(continuationLogprobs(response, document.id, CONTINUATIONS.length))];
  return { metrics: { acc: Number(choice === document.target) }, extracted: { choice } };
}

function scoreGeneration(document: EvalDocument, response: EvalResponse): DocumentScore {
  const choice = extractChoiceLetter(generatedText(response, document.id), MMLU_LETTERS);
  return { metrics: { acc: Number(choice === document.target) }, extracted: { choice } };
}
