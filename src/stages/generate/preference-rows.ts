/**
 * Generate mode `preference`: several teacher answers to each prompt -> one preference pair per prompt,
 * the records DPO trains on ({prompt, chosen, rejected}). Answers first pass the filters (length, patterns,
 * truncation); they are then ranked by the answer check when filters.answer names one (a correct answer is
 * chosen over a wrong one), and by the teacher's own mean token log-probability within each side, or alone
 * when there is no check. Chosen is the best of the preferred side, rejected the answer the teacher found
 * likeliest among the wrong ones (the mistake it is most prone to), or its least likely answer when only
 * log-probabilities rank them. A prompt whose answers do not split (all correct, all wrong, a single
 * distinct answer) makes no pair.
 */
import { conversation, plainPrompt } from '../../../datasets/prompt-ids.ts';
import type { SeedPrompt } from '../../../datasets/prompts.ts';
import type { ChatMessage } from '../../../datasets/record-fields.ts';
import type { DropReason, PairCounts } from '../../run/data-summary.ts';
import { answerIsCorrect, emptyDropCounts, type ResponseFilter } from './response-filters.ts';
import type { ResponseFilterSpec } from '../../recipe/index.ts';
import type { Sample } from '../../teachers/teacher.ts';
import { filteredAnswers } from './example-rows.ts';
import type { TeacherJob } from './teacher-jobs.ts';

export interface PreferenceRecord {
  prompt: string | ChatMessage[];
  chosen: string | ChatMessage[];
  rejected: string | ChatMessage[];
  /** The seed prompt's position, `file:line`. */
  source: string;
}

export interface PairOptions {
  /** The filters except the answer check, which ranks instead of dropping. */
  filter: ResponseFilter;
  answer: ResponseFilterSpec['answer'];
  system: string | null;
  /** Records as conversations, for a student with a chat template; plain text otherwise. */
  chat: boolean;
}

interface Candidate {
  text: string;
  correct: boolean;
  meanLogprob: number;
}

export function buildPreferencePairs(jobs: readonly TeacherJob[], answers: readonly Sample[], prompts: readonly SeedPrompt[], options: PairOptions) {
  const counts: PairCounts = { pairs: 0, unpaired: 0, dropped: emptyDropCounts() };
  const byPrompt = new Map<number, Candidate[]>();
  for (const { job, answer, prompt } of filteredAnswers(jobs, answers, prompts, options.filter, counts.dropped)) {
    const candidates = byPrompt.get(job.prompt) ?? [];
    candidates.push({ text: answer.text, correct: options.answer === 'none' || answerIsCorrect(options.answer, answer.text, prompt.reference), meanLogprob: meanLogprob(answer) });
    byPrompt.set(job.prompt, candidates);
  }
  const records: PreferenceRecord[] = [];
  prompts.forEach((prompt, index) => {
    const pair = choosePair(byPrompt.get(index) ?? [], options.answer !== 'none');
    if (!pair) {
      counts.unpaired++;
      return;
    }
    counts.pairs++;
    records.push(record(prompt, pair, options));
  });
  return { records, counts };
}

function choosePair(candidates: Candidate[], checked: boolean): { chosen: string; rejected: string } | null {
  const likeliestFirst = [...candidates].sort((a, b) => b.meanLogprob - a.meanLogprob);
  if (checked) {
    const chosen = likeliestFirst.find((c) => c.correct);
    const rejected = likeliestFirst.find((c) => !c.correct);
    return chosen && rejected ? { chosen: chosen.text, rejected: rejected.text } : null;
  }
  const [best, worst] = [likeliestFirst[0], likeliestFirst.at(-1)];
  return best && worst && best.text.trim() !== worst.text.trim() && best.meanLogprob > worst.meanLogprob ? { chosen: best.text, rejected: worst.text } : null;
}

/** The teacher's mean log-probability of its own tokens (requests always ask for them); -Infinity for an empty answer. */
function meanLogprob(answer: Sample): number {
  if (answer.tokens.length === 0) return -Infinity;
  return answer.tokens.reduce((sum, token) => sum + token.logprob, 0) / answer.tokens.length;
}

function record(prompt: SeedPrompt, { chosen, rejected }: { chosen: string; rejected: string }, options: PairOptions): PreferenceRecord {
  const input = { prompt: prompt.text, ...(options.system !== null && { system: options.system }) };
  if (options.chat) {
    const reply = (content: string): ChatMessage[] => [{ role: 'assistant', content }];
    return { prompt: conversation(input), chosen: reply(chosen), rejected: reply(rejected), source: prompt.source };
  }
  return { prompt: plainPrompt(input), chosen, rejected, source: prompt.source };
}
