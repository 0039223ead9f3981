/**
 * From a model's response to the answer a suite scores, as EleutherAI's lm-evaluation-harness does it, so
 * our numbers are comparable with published ones. For GSM8K (task YAMLs gsm8k, gsm8k-cot, version 3.0):
 *
 *   strict-match      the first `#### N` (gsm8k) or `The answer is N` followed by any character (gsm8k-cot)
 *   flexible-extract  the last number-like run in the text: `(-?[$0-9.,]{2,})|(-?[0-9]+)`
 *   exact match       remove every `,`, every `$`, everything up to the last `#### `, one `.` at the end
 *                     (in that order), then lower-case; no trimming
 *
 * The harness runs these with Python's `re`; where JavaScript's regexes differ the patterns below are
 * rewritten to behave like Python's (`.` excludes only `\n`; `$` also matches before a final `\n`). The
 * quirks are kept on purpose: `29.00` differs from `29`, and `The answer is 18` at the very end of the text
 * extracts `1` (the pattern's unescaped `.` must consume a character).
 */

import type { EvalResponse } from './suite.ts';

export type AnswerFilter = 'strict-match' | 'flexible-extract';

/** Which strict pattern: the `#### N` of the gsm8k task, or the `The answer is N.` of gsm8k-cot. */
export type StrictStyle = 'gsm8k' | 'cot';

const STRICT_PATTERNS: Record<StrictStyle, RegExp> = {
  gsm8k: /#### (-?[0-9.,]+)/,
  // The harness writes `The answer is (\-?[0-9\.\,]+).`: its last `.` is any character but `\n`.
  cot: /The answer is (-?[0-9.,]+)[^\n]/,
};
const FLEXIBLE_NUMBER = /(-?[$0-9.,]{2,})|(-?[0-9]+)/g;

/** The answer a filter finds in a model's output, or null where the harness falls back to `[invalid]`. */
export function extractAnswer(output: string, filter: AnswerFilter, style: StrictStyle = 'gsm8k'): string | null {
  if (filter === 'strict-match') return STRICT_PATTERNS[style].exec(output)?.[1] ?? null;
  // re.findall with two groups yields (group1, group2) tuples; the harness takes the last tuple's first
  // non-empty group. Exactly one group takes part in each match, so that is the group that matched.
  const last = [...output.matchAll(FLEXIBLE_NUMBER)].at(-1);
  return last ? (last[1] ?? last[2]) : null;
}

/** The harness's `regexes_to_ignore` for GSM8K, in its order, then `ignore_case`; applied to both sides. */
export function normalizeAnswer(text: string): string {
  return text
    .replaceAll(',', '')
    .replaceAll('$', '')
    .replace(/^[\s\S]*#### /, '')
    .replace(/\.(?=\n?$)/, '')
    .toLowerCase();
}

export function answersMatch(prediction: string | null, reference: string): boolean {
  return prediction !== null && normalizeAnswer(prediction) === normalizeAnswer(reference);
}

/**
 * Whether a worked solution reaches the reference answer: its `#### N` if it has one, else its last number.
 * Used to keep only correct teacher solutions.
 */
export function solutionIsCorrect(output: string, reference: string): boolean {
  const answer = extractAnswer(output, 'strict-match') ?? extractAnswer(output, 'flexible-extract');
  return answersMatch(answer, reference);
}

// Python's str.isspace() characters, which str.strip() removes (JavaScript's trim() differs at the edges:
// it keeps U+001C..U+001F and U+0085, and removes U+FEFF).
const PYTHON_EDGE_SPACE = /^[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

/** Python's `str.strip()`, which harness templates apply (e.g. MMLU's `{{question.strip()}}`). */
export function stripLikePython(text: string): string {
  return text.replace(PYTHON_EDGE_SPACE, '');
}

/**
 * The first of `letters` standing as a word of its own (` B`, `B.`, `(B)`, not the `A` of `Answer`): the
 * choice a generating model names when asked for a multiple-choice letter.
 */
export function extractChoiceLetter(output: string, letters: readonly string[]): string | null {
  const escaped = letters.map((letter) => letter.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`\\b(${escaped.join('|')})\\b`).exec(output)?.[1] ?? null;
}

/** The index of the largest log-probability, the first on ties (numpy's argmax, as the harness uses). */
export function argmax(logprobs: readonly number[]): number {
  if (logprobs.length === 0) throw new RangeError('argmax: expected at least one log-probability');
  let best = 0;
  for (let i = 1; i < logprobs.length; i++) if (logprobs[i] > logprobs[best]) best = i;
  return best;
}

/** The text a generate request produced; any other response means the runner mixed up requests (a bug). */
export function generatedText(response: EvalResponse, documentId: string): string {
  if (response.kind !== 'generate') throw new Error(`${documentId}: expected a generate response, got ${response.kind}`);
  return response.text;
}

/** The log-probabilities of a loglikelihood request's `count` continuations, checked likewise. */
export function continuationLogprobs(response: EvalResponse, documentId: string, count: number): number[] {
  if (response.kind !== 'loglikelihood') throw new Error(`${documentId}: expected a loglikelihood response, got ${response.kind}`);
  if (response.logprobs.length !== count) {
    throw new Error(`${documentId}: expected ${count} log-probabilities, got ${response.logprobs.length}`);
  }
  return response.logprobs;
}
