import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../../src/model/causal-lm.ts';
import { softcapSlope } from '../../src/model/softcap.ts';
import { headInputGradient, headLogSumExp } from '../../src/model/streamed-head.ts';
import { maskWeights } from './masking.ts';

/** crossEntropy(hidden @ head, targets, mask) for a model whose output head is streamed: see chunkedTokenNll. */
export function chunkedCrossEntropy(hidden: tf.Tensor2D, model: CausalLM, targets: Int32Array, mask: tf.Tensor1D): tf.Scalar {
  return tf.sum(tf.mul(chunkedTokenNll(hidden, model, targets), maskWeights(mask))) as tf.Scalar;
}

/**
 * tokenNll(hidden @ head, targets) for a model whose output head is streamed, without the [N, V] logits:
 * the log-partition is a logSumExp streamed over the head's vocabulary chunks, the target logit a dot
 * product with the target's head row, and the gradient for the hidden states walks the chunks again:
 * dL/dh = sum over chunks of (softmax chunk * dy) @ rows - dy * target row (each term times the slope
 * of the final-logit cap where there is one). The head is frozen and gets no gradient. Memory: a few
 * [N, chunk] tensors instead of several [N, V] ones. hidden [N, D], targets [N] -> [N].
 */
export function chunkedTokenNll(hidden: tf.Tensor2D, model: CausalLM, targets: Int32Array): tf.Tensor1D {
  const nll = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [h, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const targetRows = model.headRows(targets); // [N, D]
    const targetLogits = model.capLogits(tf.sum(tf.mul(h, targetRows), 1)); // [N]
    const logZ = headLogSumExp(model, h); // [N]
    save([h, targetRows, logZ, targetLogits]);
    return {
      value: tf.sub(logZ, targetLogits) as tf.Tensor1D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sh, rows, z, target] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
          const scale = tf.expandDims(dy, 1); // [N, 1]
          const logZ = tf.expandDims(z, 1);
          // The softmax chunk by chunk, scaled; the target rows' -dy term is added once.
          const dSoftmax = headInputGradient(model, sh, (chunk) => tf.mul(tf.exp(tf.sub(chunk.logits(), logZ)), scale));
          const cap = model.config.finalLogitSoftcap;
          const targetScale = cap === null ? scale : tf.mul(scale, tf.expandDims(softcapSlope(target, cap), 1));
          return [tf.sub(dSoftmax, tf.mul(rows, targetScale))];
        }),
    };
  });
  return nll(hidden) as tf.Tensor1D;
}
