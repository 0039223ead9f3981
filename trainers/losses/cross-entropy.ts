import * as tf from '@tensorflow/tfjs-core';
import { maskWeights } from './masking.ts';

/**
 * Mean next-token cross-entropy over unmasked positions. logits [N, V], targets [N] (int32), mask [N]
 * (1 = scored). Returns 0 when nothing is unmasked.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, mask: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.mul(tokenNll(logits, targets), maskWeights(mask))));
}

/**
 * Each row's negative log-likelihood of its target, logSumExp(row) - row[target]: logits [N, V], targets
 * [N] (int32) -> [N].
 *
 * The gradient is written out, (softmax - onehot(target)) * dy, because autodiff through a gather of the
 * target logits would build a one-hot or segment-sum of the full [N, V] matrix a second time.
 */
export function tokenNll(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => tokenNllWithGrad(logits, targets));
}

// customGrad hands every input over as float32, so the targets are cast back to ids.
const tokenNllWithGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [logits, targetsAsFloat, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  const [N, V] = logits.shape;
  const targets = tf.cast(targetsAsFloat, 'int32');
  // One softmax pass (vectorized on wasm, where a separate exp over [N, V] costs 4x more) gives both the
  // gradient's probabilities and the log-partition: the largest probability is 1 / sum(exp(x - max)),
  // so logZ = max - log(max p). That probability is at least 1/V, so its log is as exact as logSumExp,
  // where log(p[target]) could underflow.
  const probs = tf.softmax(logits); // [N, V]
  const logZ = tf.sub(tf.max(logits, -1), tf.log(tf.max(probs, -1))); // [N]
  const targetLogits = tf.gather(tf.reshape(logits, [N * V]), targetIndices(targets, V)); // [N]
  save([probs, targets]);
  return {
    value: tf.sub(logZ, targetLogits) as tf.Tensor1D,
    // In a tidy: tfjs frees a gradient function's intermediates only when the whole backward pass ends.
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [savedProbs, savedTargets] = saved;
        const scale = dy as tf.Tensor1D; // [N]
        const onTarget = tf.scatterND(tf.stack([tf.range(0, N, 1, 'int32'), savedTargets], 1), scale, [N, V]);
        const dLogits = tf.sub(tf.mul(savedProbs, tf.expandDims(scale, 1)), onTarget); // [N, V]
        return [dLogits, tf.zerosLike(targetsAsFloat)];
      }),
  };
}) as (logits: tf.Tensor2D, targets: tf.Tensor1D) => tf.Tensor1D;

/** Flat indices row * V + target of each row's target logit. */
function targetIndices(targets: tf.Tensor1D, vocab: number): tf.Tensor1D {
  const rows = tf.range(0, targets.shape[0], 1, 'int32');
  return tf.add(tf.mul(rows, tf.scalar(vocab, 'int32')), targets) as tf.Tensor1D;
}
