/**
 * Which teacher responses become training examples: length bounds, regular expressions, truncation, and
 * an answer check against the prompt's reference so only correct solutions are kept (rejection sampling).
 */
import type { ResponseFilterSpec } from '../../recipe/index.ts';
import { solutionIsCorrect } from '../../eval/answers.ts';
import { DROP_REASONS, type DropReason } from '../../run/data-summary.ts';


export interface CandidateResponse {
  text: string;
  /** `length` when the teacher stopped at max_tokens. */
  finishReason: string;
  reference?: string;
}

export type ResponseFilter = (response: CandidateResponse) => DropReason | null;

export function emptyDropCounts(): Record<DropReason, number> {
  return Object.fromEntries(DROP_REASONS.map((reason) => [reason, 0])) as Record<DropReason, number>;
}

export function responseFilter(spec: ResponseFilterSpec): ResponseFilter {
  const require = spec.require === null ? null : new RegExp(spec.require);
  const reject = spec.reject === null ? null : new RegExp(spec.reject);
  return ({ text, finishReason, reference }) => {
    if (text.trim().length < spec.minChars) return 'too_short';
    if (spec.maxChars !== null && text.length > spec.maxChars) return 'too_long';
    if (spec.dropTruncated && finishReason === 'length') return 'truncated';
    if (require && !require.test(text)) return 'missing_pattern';
    if (reject?.test(text)) return 'rejected_pattern';
    if (spec.answer !== 'none' && !answerIsCorrect(spec.answer, text, reference)) return 'wrong_answer';
    return null;
  };
}

/** Whether a response's answer is the reference's: gsm8k compares the final numbers, exact the whole texts. */
export function answerIsCorrect(check: 'gsm8k' | 'exact', text: string, reference: string | undefined): boolean {
  if (reference === undefined) return false;
  return check === 'gsm8k' ? solutionIsCorrect(text, reference) : text.trim() === reference.trim();
}
