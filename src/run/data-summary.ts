/**
 * data/summary.json, what the generate stage wrote (layout.ts): how many prompts, requests and answers,
 * what became of the answers, and the shards the train stage reads. The stage writes it; the report and
 * a resumed run read it.
 */
import type { GenerateSpec } from '../recipe/index.ts';

export interface GenerateSummary {
  mode: GenerateSpec['mode'];
  teacher: TeacherIdentity;
  prompts: number;
  requests: number;
  /** Answers found in the cache, and answers asked for in this run. */
  cached: number;
  queried: number;
  /** Training examples, or preference pairs in mode preference. */
  examples: number;
  /** What became of the answers: rows (modes generate and label), or pairs (mode preference). */
  counts: RowCounts | null;
  pairs: PairCounts | null;
  /** Soft labels per response token, 0 for sequence-level data; and why, when soft labels were wanted. */
  k: number;
  fallback: string | null;
  /** The request pool's counters (server providers) over every attempt at the stage, failed ones included. */
  teacherRequests: TeacherCounters | null;
  /** Attempts at the stage so far, this one included, and their time together. */
  attempts: number;
  seconds: number;
  shards: string[];
}

/** The teacher that answered, as far as it identifies itself. */
export interface TeacherIdentity {
  provider: string;
  model: string;
  digest: string | null;
}

/** Why the response filters dropped an answer. */
export const DROP_REASONS = ['too_short', 'too_long', 'truncated', 'missing_pattern', 'rejected_pattern', 'wrong_answer'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface RowCounts {
  kept: number;
  duplicates: number;
  dropped: Record<DropReason, number>;
  /** Kept as text only because a sampled teacher token has no student id. */
  withoutSoftLabels: number;
  responseTokens: number;
}

export interface PairCounts {
  pairs: number;
  /** Prompts whose kept answers gave no pair. */
  unpaired: number;
  /** Answers the filters removed before ranking. */
  dropped: Record<DropReason, number>;
}

export interface TeacherCounters {
  requests: number;
  retries: number;
  failures: number;
  timeouts: number;
  tokens: number;
}
