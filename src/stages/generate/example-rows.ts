/**
 * Teacher answers -> training rows in the student's ids: prompt ids as the student will be prompted,
 * response ids with the teacher's top-k soft labels mapped into the student's vocabulary, and a closing
 * EOS so the student learns to stop. Filters and de-duplication decide which answers become rows.
 */
import type { PromptEncoder } from '../../../datasets/prompt-ids.ts';
import type { ChatMessage } from '../../../datasets/record-fields.ts';
import type { SeedPrompt } from '../../../datasets/prompts.ts';
import type { DropReason, RowCounts } from '../../run/data-summary.ts';
import { emptyDropCounts, type ResponseFilter } from './response-filters.ts';
import type { ExampleRowInput } from '../../formats/arrow-examples.ts';
import type { Sample } from '../../teachers/teacher.ts';
import type { TeacherVocabMap } from '../../teachers/vocab-map.ts';
import type { Tokenizer } from '../../tokenizer/tokenizer.ts';
import type { TeacherJob } from './teacher-jobs.ts';

export interface RowBuilderOptions {
  tokenizer: Tokenizer;
  encodePrompt: PromptEncoder;
  system: string | null;
  /** Soft labels per token; null: sequence-level data (text only). */
  softLabels: { k: number; vocab: TeacherVocabMap } | null;
  filter: ResponseFilter;
  dedup: boolean;
}

/**
 * `answers[i]` is the teacher's answer to `jobs[i]`. Each kept row comes with its conversation as text
 * (the system prompt, the prompt, the teacher's answer), for data in the chat form other tools read.
 */
export function buildRows(
  jobs: readonly TeacherJob[],
  answers: readonly Sample[],
  prompts: readonly SeedPrompt[],
  options: RowBuilderOptions,
): { rows: ExampleRowInput[]; conversations: ChatMessage[][]; counts: RowCounts } {
  const counts: RowCounts = { kept: 0, duplicates: 0, dropped: emptyDropCounts(), withoutSoftLabels: 0, responseTokens: 0 };
  const seen = new Set<string>();
  const rows: ExampleRowInput[] = [];
  const conversations: ChatMessage[][] = [];
  for (const { job, answer, prompt } of filteredAnswers(jobs, answers, prompts, options.filter, counts.dropped)) {
    const identity = `${job.prompt}\u0000${answer.text.trim()}`;
    if (options.dedup && seen.has(identity)) {
      counts.duplicates++;
      continue;
    }
    seen.add(identity);
    const row = buildRow(job, answer, prompt, options);
    if (options.softLabels && !row.softLabels) counts.withoutSoftLabels++;
    counts.kept++;
    counts.responseTokens += row.responseIds.length;
    rows.push(row);
    conversations.push([
      ...(options.system !== null ? [{ role: 'system', content: options.system }] : []),
      { role: 'user', content: prompt.text },
      { role: 'assistant', content: answer.text },
    ]);
  }
  return { rows, conversations, counts };
}

/** Each answer the filter keeps, with its job and prompt; what it drops is counted by reason in `dropped`. */
export function* filteredAnswers(
  jobs: readonly TeacherJob[],
  answers: readonly Sample[],
  prompts: readonly SeedPrompt[],
  filter: ResponseFilter,
  dropped: Record<DropReason, number>,
): Generator<{ job: TeacherJob; answer: Sample; prompt: SeedPrompt }> {
  for (const [i, job] of jobs.entries()) {
    const answer = answers[i];
    const prompt = prompts[job.prompt];
    const reason = filter({ text: answer.text, finishReason: answer.finishReason, reference: prompt.reference });
    if (reason) dropped[reason]++;
    else yield { job, answer, prompt };
  }
}

function buildRow(job: TeacherJob, answer: Sample, prompt: SeedPrompt, options: RowBuilderOptions): ExampleRowInput {
  const promptIds = options.encodePrompt({ prompt: prompt.text, ...(options.system !== null && { system: options.system }) });
  const base = { promptIds, source: job.sample === 0 ? prompt.source : `${prompt.source} #${job.sample}`, requestKey: job.key };
  const mapped = options.softLabels && answer.tokens.length > 0 ? options.softLabels.vocab.mapSample(answer.tokens, options.softLabels.k) : null;
  const stopped = answer.finishReason !== 'length';
  if (!mapped || mapped.unmappedSampled.length > 0) {
    const responseIds = options.tokenizer.encode(answer.text, { addSpecialTokens: false });
    return { ...base, responseIds: withEos(responseIds, stopped ? options.tokenizer.eosId : null) };
  }
  return { ...base, ...closeWithEos(mapped, stopped ? options.tokenizer.eosId : null) };
}

function withEos(ids: number[], eos: number | null): number[] {
  return eos === null || ids.at(-1) === eos ? ids : [...ids, eos];
}

/**
 * A server does not list the end-of-sequence token among the ones it returns, yet the answer ended there:
 * append EOS with a one-hot soft label (the teacher did stop) so the student learns where to stop.
 */
function closeWithEos(
  mapped: { ids: Int32Array; sampledLogprobs: Float32Array; topIds: Int32Array; topLogprobs: Float32Array; k: number },
  eos: number | null,
): Pick<ExampleRowInput, 'responseIds' | 'softLabels' | 'sampledLogprob'> {
  const { ids, sampledLogprobs, topIds, topLogprobs, k } = mapped;
  if (eos === null || ids.at(-1) === eos) return { responseIds: ids, softLabels: { ids: topIds, logprobs: topLogprobs }, sampledLogprob: sampledLogprobs };
  const closedTopIds = new Int32Array(topIds.length + k);
  closedTopIds.set(topIds);
  closedTopIds[topIds.length] = eos;
  const closedTopLogprobs = new Float32Array(topLogprobs.length + k).fill(-Infinity);
  closedTopLogprobs.set(topLogprobs);
  closedTopLogprobs[topLogprobs.length] = 0;
  return {
    responseIds: [...ids, eos],
    softLabels: { ids: closedTopIds, logprobs: closedTopLogprobs },
    sampledLogprob: [...sampledLogprobs, 0],
  };
}
