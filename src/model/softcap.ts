import * as tf from '@tensorflow/tfjs-core';

/** Gemma 2's soft-capping of attention scores and final logits: cap * tanh(x / cap); x itself without a cap. */
export function softcap<T extends tf.Tensor>(x: T, cap: number | null): T {
  return cap === null ? x : (tf.mul(tf.tanh(tf.div(x, cap)), cap) as T);
}

/** d softcap(x) / dx from the capped value y: 1 - (y / cap)^2. */
export function softcapSlope<T extends tf.Tensor>(capped: T, cap: number): T {
  return tf.sub(1, tf.square(tf.div(capped, cap))) as T;
}
