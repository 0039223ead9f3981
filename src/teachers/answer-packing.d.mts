/** Generated tokens and their alternatives in flat arrays (see answer-packing.mjs). */
export interface PackedLogprobs {
  /** Distinct token texts; entries refer to them by index. */
  tokens: string[];
  /** UTF-8 bytes of each distinct token, where the server sent them. */
  bytes: (number[] | null)[];
  /** Per entry (each generated token, then its alternatives), an index into `tokens`. */
  entries: Int32Array;
  logprobs: Float64Array;
  /** Alternatives of each generated token. */
  topCounts: Int32Array;
}

export type AnswerPath = readonly (string | number)[];

export type ParsedAnswer = { json: unknown; packed?: PackedLogprobs } | { problem: string };

export declare function parseAnswer(body: Uint8Array, logprobsAt: AnswerPath | undefined): ParsedAnswer;
export declare function parentOf(json: unknown, path: AnswerPath): Record<string | number, unknown> | undefined;
export declare function packedBuffers(packed: PackedLogprobs): ArrayBuffer[];
