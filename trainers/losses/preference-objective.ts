/**
 * The DPO training objective on a batch of preference pairs (see batches.ts: the chosen rows, then the
 * rejected rows), against the reference log-probabilities the batch carries. It observes the metrics TRL's
 * DPOTrainer logs, under its names: the mean implicit rewards of the chosen and rejected completions, their
 * margin, the share of pairs whose chosen reward is higher, and the policy's log-probabilities.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../../datasets/batches.ts';
import type { CausalLM } from '../../src/model/causal-lm.ts';
import type { Projection } from '../../src/model/layers.ts';
import type { LossFn } from '../loop.ts';
import { nextTokenNll } from './next-token.ts';
import { normalizesLength, preferenceLoss, sequenceLogps, type PairLogps, type PreferenceOptions } from './preference.ts';

export function preferenceObjective(model: CausalLM, project: Projection, options: PreferenceOptions): LossFn {
  const normalize = normalizesLength(options.loss);
  return (batch, observe) => {
    const { pairs, referenceLogps } = checkedPairs(batch);
    const mask = tf.tensor1d(batch.mask);
    const rows = batch.batchSize;
    const logps = sequenceLogps(nextTokenNll(model, batch, project), mask, rows, normalize);
    const counts = tokenCounts(batch);
    const reference = tf.tensor1d(normalize ? referenceLogps.map((sum, row) => sum / Math.max(counts[row], 1)) : referenceLogps);
    const split = (values: tf.Tensor1D): PairLogps => ({ chosen: tf.slice(values, 0, pairs), rejected: tf.slice(values, pairs, pairs) });
    const policy = split(logps);
    const { loss, chosenRewards, rejectedRewards } = preferenceLoss(policy, split(reference), options);
    observe('rewards/chosen', tf.mean(chosenRewards));
    observe('rewards/rejected', tf.mean(rejectedRewards));
    observe('rewards/margins', tf.mean(tf.sub(chosenRewards, rejectedRewards)));
    observe('rewards/accuracies', tf.mean(tf.cast(tf.greater(chosenRewards, rejectedRewards), 'float32')));
    observe('logps/chosen', tf.mean(policy.chosen));
    observe('logps/rejected', tf.mean(policy.rejected));
    return loss;
  };
}

/** Scored targets in each row. */
function tokenCounts({ mask, batchSize, seqLen }: Batch): number[] {
  return Array.from({ length: batchSize }, (_, row) => mask.subarray(row * seqLen, (row + 1) * seqLen).reduce((a, m) => a + m, 0));
}

function checkedPairs(batch: Batch): { pairs: number; referenceLogps: Float32Array } {
  if (!batch.pairs || batch.batchSize !== 2 * batch.pairs || !batch.referenceLogps) {
    throw new Error('preference objective: expected a batch of preference pairs with reference log-probabilities');
  }
  return { pairs: batch.pairs, referenceLogps: batch.referenceLogps };
}
