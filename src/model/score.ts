import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from './causal-lm.ts';
import type { Projection } from './layers.ts';
import { headLogSumExp, headTopK } from './streamed-head.ts';

export interface TokenScores {
  ids: number[];
  /** logprobs[0] is null; logprobs[i] = log P(ids[i] | ids[0..i-1]). */
  logprobs: (number | null)[];
  /** For each position i >= 1, the k most likely tokens at that position, best first. */
  topK: ({ id: number; logprob: number }[] | null)[];
}

/** Log-probabilities of a sequence under the model, from one causal forward pass. */
export async function scoreTokens(model: CausalLM, ids: number[], k = 0, project?: Projection): Promise<TokenScores> {
  if (ids.length === 0) throw new RangeError('score: the sequence must contain at least one token');
  const V = model.config.vocabSize;
  const outOfRange = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= V);
  if (outOfRange !== undefined) throw new RangeError(`score: token id ${outOfRange} is outside the vocabulary [0, ${V})`);
  if (model.streamedHead()) return scoreThroughHeadChunks(model, ids, k, project);
  const logProbs = tf.tidy(() => {
    const logits = model.forward(tf.tensor2d(ids, [1, ids.length], 'int32'), undefined, project); // [1, T, V]
    return tf.logSoftmax(tf.reshape(logits, [ids.length, V])); // [T, V]
  });
  const table = (await logProbs.data()) as Float32Array;
  logProbs.dispose();

  const scores: TokenScores = { ids, logprobs: [null], topK: [null] };
  for (let i = 1; i < ids.length; i++) {
    const row = table.subarray((i - 1) * V, i * V);
    scores.logprobs.push(row[ids[i]]);
    scores.topK.push(k > 0 ? topEntries(row, k) : null);
  }
  return scores;
}

/**
 * scoreTokens for a streamed head: the log-partition and the top k streamed over the head's chunks and the
 * targets' logits from their head rows, so no [T, V] log-probabilities exist in the backend or on the host.
 */
async function scoreThroughHeadChunks(model: CausalLM, ids: number[], k: number, project?: Projection): Promise<TokenScores> {
  const scores: TokenScores = { ids, logprobs: [null], topK: [null] };
  const T = ids.length;
  if (T === 1) return scores;
  const [logprobs, topValues, topIds] = tf.tidy(() => {
    const hidden = tf.reshape(model.hidden(tf.tensor2d(ids, [1, T], 'int32'), undefined, project), [T, -1]);
    const rows = tf.slice(hidden, [0, 0], [T - 1, -1]) as tf.Tensor2D; // position i predicts ids[i + 1]
    const logZ = headLogSumExp(model, rows); // [T - 1]
    const targets = tf.sub(model.capLogits(tf.sum(tf.mul(rows, model.headRows(ids.slice(1))), 1)), logZ);
    if (k === 0) return [targets];
    const top = headTopK(model, rows, k);
    return [targets, tf.sub(top.values, tf.expandDims(logZ, 1)), top.ids];
  });
  const [values, best, bestIds] = await Promise.all([logprobs, topValues, topIds].map((t) => t?.data()));
  tf.dispose([logprobs, topValues, topIds].filter((t): t is tf.Tensor => t !== undefined));
  for (let i = 0; i < T - 1; i++) {
    scores.logprobs.push(values![i]);
    scores.topK.push(k > 0 ? Array.from({ length: k }, (_, j) => ({ id: bestIds![i * k + j], logprob: best![i * k + j] })) : null);
  }
  return scores;
}

/** The k most likely ids of a row of log-probabilities, best first. */
export function topEntries(row: Float32Array, k: number): { id: number; logprob: number }[] {
  return Array.from(row.keys())
    .sort((a, b) => row[b] - row[a])
    .slice(0, k)
    .map((id) => ({ id, logprob: row[id] }));
}

/** log softmax of one row of logits, in float64 for the normalizer. */
export function logSoftmax(logits: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const logZ = max + Math.log(sum);
  return logits.map((v) => v - logZ);
}
