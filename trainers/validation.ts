import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../datasets/batches.ts';
import { readScalar, type LossFn } from './loop.ts';

export interface ValidationResult {
  loss: number;
  /** What the loss observed (its KD and CE parts, agreement), weighted like the loss. */
  observed: Record<string, number>;
}

/** Token-weighted means of a per-batch mean loss and its observed parts over held-out batches; null when no token is scored. */
export async function validate(batches: Iterable<Batch>, loss: LossFn): Promise<ValidationResult | null> {
  let weighted = 0;
  let tokens = 0;
  const observed: Record<string, number> = {};
  for (const batch of batches) {
    if (batch.tokens === 0) continue;
    const kept: [string, tf.Scalar][] = [];
    const value = tf.tidy(() => loss(batch, (name, metric) => kept.push([name, tf.keep(tf.clone(metric))])));
    weighted += (await readScalar(value)) * batch.tokens;
    for (const [name, metric] of kept) observed[name] = (observed[name] ?? 0) + (await readScalar(metric)) * batch.tokens;
    tokens += batch.tokens;
  }
  if (tokens === 0) return null;
  return { loss: weighted / tokens, observed: Object.fromEntries(Object.entries(observed).map(([name, sum]) => [name, sum / tokens])) };
}
