import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../datasets/batches.ts';

/** Token-weighted mean of a per-batch mean loss over held-out batches; null when no token is scored. */
export function validationLoss(batches: Iterable<Batch>, loss: (batch: Batch) => tf.Scalar): number | null {
  let weighted = 0;
  let tokens = 0;
  for (const batch of batches) {
    if (batch.tokens === 0) continue;
    const value = tf.tidy(() => loss(batch));
    weighted += value.dataSync()[0] * batch.tokens;
    value.dispose();
    tokens += batch.tokens;
  }
  return tokens === 0 ? null : weighted / tokens;
}
