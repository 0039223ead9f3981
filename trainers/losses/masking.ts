import * as tf from '@tensorflow/tfjs-core';

/** Mean of per-token values over unmasked positions; 0 when every position is masked. */
export function maskedMean(perToken: tf.Tensor1D, mask: tf.Tensor1D): tf.Scalar {
  return tf.div(tf.sum(tf.mul(perToken, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
}

/** The weight each position gets in a masked mean: mask / max(sum(mask), 1). */
export function maskWeights(mask: tf.Tensor1D): tf.Tensor1D {
  return tf.div(mask, tf.maximum(tf.sum(mask), 1)) as tf.Tensor1D;
}
