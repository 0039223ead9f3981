/**
 * The DPO training objective on a batch of preference pairs (see batches.ts: the chosen rows, then the
 * rejected rows), against the reference log-probabilities the batch carries. It observes the metrics TRL's
 * DPOTrainer logs, under its names: the mean implicit rewards of the chosen and rejected completions, their
 * margin, the share of pairs whose chosen reward is higher, the policy's log-probabilities, and with RPO the
 * chosen completions' cross-entropy (nll_loss).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../batches.ts';
import type { CausalLM } from '../../src/model/causal-lm.ts';
import type { Projection } from '../../src/model/layers.ts';
import type { LossFn } from '../loop.ts';
import { maskedMean } from './masking.ts';
import { nextTokenNll } from './next-token.ts';
import { normalizesLength, preferenceLoss, sequenceLogps, type PairLogps, type PreferenceOptions } from './preference.ts';

export interface PreferenceObjectiveOptions extends PreferenceOptions {
  /** RPO (Pang et al., TRL's rpo_alpha): adds this times the mean cross-entropy of the chosen completions' tokens. */
  rpoAlpha: number | null;
}

export function preferenceObjective(model: CausalLM, project: Projection, options: PreferenceObjectiveOptions): LossFn {
  const normalize = normalizesLength(options.loss);
  return (batch, observe) => {
    const { pairs, referenceLogps } = checkedPairs(batch);
    const mask = tf.tensor1d(batch.mask);
    const rows = batch.batchSize;
    const nll = nextTokenNll(model, batch, project);
    const logps = sequenceLogps(nll, mask, rows, normalize);
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
    if (options.rpoAlpha === null) return loss;
    const chosenTokens = pairs * batch.seqLen;
    const chosenNll = maskedMean(tf.slice(nll, 0, chosenTokens), tf.slice(mask, 0, chosenTokens));
    observe('nll_loss', chosenNll);
    return tf.add(loss, tf.mul(chosenNll, options.rpoAlpha)) as tf.Scalar;
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
