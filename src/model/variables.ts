import * as tf from '@tensorflow/tfjs-core';

/**
 * A trainable variable holding `initial`, which is disposed. Variables stay unnamed: tfjs names are
 * process-global, and a teacher and a student (or two tests) may hold the same parameter names.
 */
export function ownedVariable(initial: tf.Tensor, trainable = true): tf.Variable {
  const variable = tf.variable(initial, trainable);
  initial.dispose();
  return variable;
}

/** Number of values across a set of named tensors. */
export function elementCount(tensors: ReadonlyMap<string, tf.Tensor>): number {
  let n = 0;
  for (const t of tensors.values()) n += t.size;
  return n;
}

export function disposeAll(tensors: ReadonlyMap<string, tf.Tensor>): void {
  for (const t of tensors.values()) t.dispose();
}
