/**
 * The contract between evaluation suites and what runs them, in the shape of EleutherAI's
 * lm-evaluation-harness: a suite turns its data into documents, each with one request for the model
 * (greedy generation, or the log-likelihood of given continuations), then scores the model's response.
 * The runner (runner.ts) answers requests through a target, caches answers, and aggregates the scores.
 */

/** What a document asks of the model. */
export type EvalRequest =
  | {
      kind: 'generate';
      prompt: string;
      /** Generation stops before the first of these strings (which is not part of the output). */
      stop: string[];
      maxTokens: number;
    }
  | {
      kind: 'loglikelihood';
      context: string;
      /** Scored as log P(continuation | context), summed over the continuation's tokens. */
      continuations: string[];
    };

export type EvalResponse =
  | { kind: 'generate'; text: string }
  | {
      kind: 'loglikelihood';
      /** One per continuation, in order. */
      logprobs: number[];
      /** Per continuation: whether it is also the greedy continuation of the context. */
      greedy: boolean[];
    };

export interface EvalDocument {
  /** Stable within the suite (e.g. `file:line`): per-sample output and caches refer to it. */
  id: string;
  request: EvalRequest;
  /** The reference answer as the data gives it. */
  target: string;
  /** Groups for sub-scores, e.g. `{ subject: 'anatomy' }` for MMLU. */
  groups?: Record<string, string>;
  /** The record as the data gives it (the harness's `doc` in per-sample output). */
  doc?: Record<string, unknown>;
}

export interface DocumentScore {
  /** Metric name (per filter, e.g. `exact_match,strict-match`) -> 0..1 for this document. */
  metrics: Record<string, number>;
  /** What each filter extracted from the output, for the per-sample file. */
  extracted: Record<string, string | null>;
}

export interface Suite {
  /** e.g. `gsm8k`, `mmlu`, or a custom suite's name. */
  name: string;
  /** Bumped whenever prompts or scoring change, so results of different versions are not compared blindly. */
  version: string;
  /** e.g. `5-shot`, `cot-8-shot`, `zero-shot`, `chat`. */
  promptStyle: string;
  shots: number;
  seed: number;
  documents: EvalDocument[];
  /** Documents the data held before any limit [documents.length]. */
  available?: number;
  score(document: EvalDocument, response: EvalResponse): DocumentScore;
  /** The metric a comparison gates on, e.g. `exact_match,flexible-extract` or `acc`. */
  primaryMetric: string;
}
