/**
 * Final-answer extraction and comparison as EleutherAI's lm-evaluation-harness does it for GSM8K, so our
 * numbers are comparable with published ones:
 *
 *   strict-match    the first `#### N`
 *   flexible-extract the last number-like run in the text
 *   exact match     case-insensitive after removing `,`, `$`, everything up to `#### ` and one trailing `.`
 *
 * The normalization is the harness's, quirks included: `29.00` still differs from `29`.
 */

const STRICT_GSM8K = /#### (-?[0-9.,]+)/;
const FLEXIBLE_NUMBER = /(-?[$0-9.,]{2,})|(-?[0-9]+)/g;
const STRICT_COT = /The answer is (-?[0-9.,]+)\./;

export type AnswerFilter = 'strict-match' | 'flexible-extract';

/** The answer the filter finds in a model's output, or null when there is none. */
export function extractAnswer(output: string, filter: AnswerFilter, style: 'gsm8k' | 'cot' = 'gsm8k'): string | null {
  if (filter === 'strict-match') {
    const match = (style === 'cot' ? STRICT_COT : STRICT_GSM8K).exec(output);
    return match ? match[1] : null;
  }
  const matches = [...output.matchAll(FLEXIBLE_NUMBER)];
  const last = matches.at(-1);
  return last ? (last[1] ?? last[2]) : null;
}

/** The harness's exact-match normalization, applied to prediction and reference alike. */
export function normalizeAnswer(text: string): string {
  return text
    .replace(/^[\s\S]*#### /, '')
    .replaceAll(',', '')
    .replaceAll('$', '')
    .replace(/\.$/, '')
    .toLowerCase()
    .trim();
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
