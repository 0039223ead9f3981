import type * as tf from '@tensorflow/tfjs-core';

/**
 * Reads tensors asynchronously so that synchronous reads of them (`dataSync`, which code that writes
 * files one tensor at a time uses) find their values on the host. The webgpu backend has no synchronous
 * read in Node, and keeps what an asynchronous one brought back until the tensor changes.
 */
export async function cacheOnHost(tensors: Iterable<tf.Tensor>): Promise<void> {
  for (const tensor of tensors) await tensor.data();
}

/** A scalar's value, read asynchronously as every backend can; the tensor is disposed. */
export async function readScalar(t: tf.Tensor): Promise<number> {
  const [value] = await t.data();
  t.dispose();
  return value;
}
