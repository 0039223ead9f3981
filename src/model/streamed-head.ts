/**
 * Reductions over the vocabulary of a streamed output head that never hold [N, V] logits: the
 * log-partition, the top-k entries, and the gradient for the hidden states, walking the head's chunks
 * (CausalLM.headChunks).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from './causal-lm.ts';
import { softcapSlope } from './softcap.ts';

/** logSumExp over the whole vocabulary of each row's logits hidden @ head, an online pass over chunks: [N]. */
export function headLogSumExp(model: CausalLM, hidden: tf.Tensor2D): tf.Tensor1D {
  let max: tf.Tensor1D | null = null; // running max of each row
  let sum: tf.Tensor1D | null = null; // sum of exp(logit - max)
  for (const { start, size } of model.headChunks()) {
    const [nextMax, nextSum] = tf.tidy(() => {
      const logits = model.withHeadRows(start, size, (rows) => model.headChunkLogits(hidden, rows)); // [N, C]
      const chunkMax = tf.max(logits, 1);
      const m = max ? tf.maximum(max, chunkMax) : chunkMax;
      const chunkSum = tf.sum(tf.exp(tf.sub(logits, tf.expandDims(m, 1))), 1);
      const s = sum ? tf.add(tf.mul(sum, tf.exp(tf.sub(max!, m))), chunkSum) : chunkSum;
      return [m, s] as tf.Tensor1D[];
    });
    tf.dispose([max, sum].filter((t): t is tf.Tensor1D => t !== null));
    max = nextMax;
    sum = nextSum;
  }
  const logZ = tf.tidy(() => tf.add(max!, tf.log(sum!))) as tf.Tensor1D;
  tf.dispose([max!, sum!]);
  return logZ;
}

/** A vocabulary chunk of the head, and its logits for the hidden states at hand, made on first use. */
export interface HeadChunk {
  start: number;
  size: number;
  logits(): tf.Tensor2D;
}

/**
 * dL/d hidden [N, D] = sum over chunks of dL/d raw logits of the chunk [N, C] @ its rows [C, D]. `chunkGradient`
 * gives the gradient for a chunk's final (soft-capped) logits; the cap's slope is applied here. Each part is
 * freed once added.
 */
export function headInputGradient(model: CausalLM, hidden: tf.Tensor2D, chunkGradient: (chunk: HeadChunk) => tf.Tensor2D): tf.Tensor2D {
  const cap = model.config.finalLogitSoftcap;
  let total: tf.Tensor2D | null = null;
  for (const { start, size } of model.headChunks()) {
    const part = tf.tidy(() =>
      model.withHeadRows(start, size, (rows) => {
        let logits: tf.Tensor2D | undefined;
        const chunk: HeadChunk = { start, size, logits: () => (logits ??= model.headChunkLogits(hidden, rows)) };
        const dLogits = chunkGradient(chunk);
        const dRaw = cap === null ? dLogits : (tf.mul(dLogits, softcapSlope(chunk.logits(), cap)) as tf.Tensor2D);
        return tf.matMul(dRaw, rows);
      }),
    );
    const sum = (total ? tf.add(total, part) : part) as tf.Tensor2D;
    if (total) tf.dispose([total, part]);
    total = sum;
  }
  return total!;
}

/** The k largest logits of each row and their token ids, best first: [N, k] each. */
export function headTopK(model: CausalLM, hidden: tf.Tensor2D, k: number): { values: tf.Tensor2D; ids: tf.Tensor2D } {
  return tf.tidy(() => {
    const values: tf.Tensor2D[] = [];
    const ids: tf.Tensor2D[] = [];
    for (const { start, size } of model.headChunks()) {
      const best = tf.tidy(() => {
        const top = tf.topk(model.withHeadRows(start, size, (rows) => model.headChunkLogits(hidden, rows)), Math.min(k, size));
        return { values: top.values as tf.Tensor2D, ids: tf.add(top.indices, tf.scalar(start, 'int32')) as tf.Tensor2D };
      });
      values.push(best.values);
      ids.push(best.ids);
    }
    const top = tf.topk(tf.concat(values, 1), k); // the best of each chunk's best
    return { values: top.values as tf.Tensor2D, ids: tf.gather(tf.concat(ids, 1), top.indices, 1, 1) as tf.Tensor2D };
  });
}
