import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from './batches.ts';
import { readScalar } from '../src/backend/host-read.ts';
import { keptMetrics, type LossFn } from './loop.ts';

export interface ValidationResult {
  loss: number;
  /** What the loss observed (its KD and CE parts, agreement), weighted like the loss. */
  observed: Record<string, number>;
  /** Preference pairs validated, for batches of pairs; null otherwise. */
  pairs: number | null;
}

/**
 * Means of a per-batch mean loss and its observed parts over held-out batches, weighted by each batch's
 * scored tokens (by its pairs, for preference pairs, whose loss is a mean over pairs); null when no token is scored.
 */
export async function validate(batches: Iterable<Batch>, loss: LossFn): Promise<ValidationResult | null> {
  let weighted = 0;
  let total = 0;
  let pairs: number | null = null;
  const observed: Record<string, number> = {};
  for (const batch of batches) {
    if (batch.tokens === 0) continue;
    const weight = batch.pairs ?? batch.tokens;
    const metrics = keptMetrics();
    const value = tf.tidy(() => loss(batch, metrics.observe));
    weighted += (await readScalar(value)) * weight;
    await metrics.addTo(observed, weight);
    total += weight;
    if (batch.pairs) pairs = (pairs ?? 0) + batch.pairs;
  }
  if (total === 0) return null;
  return { loss: weighted / total, observed: Object.fromEntries(Object.entries(observed).map(([name, sum]) => [name, sum / total])), pairs };
}
