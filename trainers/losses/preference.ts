/**
 * Preference losses on whole-sequence log-probabilities, as TRL's DPOTrainer defines them. With the
 * policy's and the reference's log-probabilities of the chosen (c) and rejected (r) completions,
 * h = (logp_c - logp_r) - (ref_c - ref_r), per pair:
 * - sigmoid (DPO, Rafailov et al.; cDPO with label smoothing e): -(1 - e) log sigma(beta h) - e log sigma(-beta h);
 * - sigmoid_norm: the same on log-probabilities divided by each completion's token count;
 * - ipo (Azar et al.): (h - 1 / (2 beta))^2 on per-token mean log-probabilities, as TRL averages them.
 * The implicit rewards are beta * (logp - ref) of each completion.
 */
import * as tf from '@tensorflow/tfjs-core';

export const PREFERENCE_LOSSES = ['sigmoid', 'sigmoid_norm', 'ipo'] as const;
export type PreferenceLossType = (typeof PREFERENCE_LOSSES)[number];

export interface PreferenceOptions {
  loss: PreferenceLossType;
  beta: number;
  /** cDPO's e: the probability that a pair's preference is flipped; sigmoid losses only. */
  labelSmoothing: number;
}

/** Log-probabilities of the chosen and of the rejected completions, one entry per pair: [P] each. */
export interface PairLogps {
  chosen: tf.Tensor1D;
  rejected: tf.Tensor1D;
}

export interface PreferenceResult {
  /** Mean over pairs. */
  loss: tf.Scalar;
  /** beta * (logp - ref) of each chosen and each rejected completion, [P]; not differentiated. */
  chosenRewards: tf.Tensor1D;
  rejectedRewards: tf.Tensor1D;
}

/** Whether the loss compares per-token mean log-probabilities rather than sums. */
export function normalizesLength(loss: PreferenceLossType): boolean {
  return loss !== 'sigmoid';
}

/**
 * Each row's summed log-probability of its scored targets, or their mean when `normalize`: nll [R * T]
 * (row-major, as tokenNll gives it), mask [R * T] -> [R]. A row with nothing scored gets 0.
 */
export function sequenceLogps(nll: tf.Tensor1D, mask: tf.Tensor1D, rows: number, normalize: boolean): tf.Tensor1D {
  return tf.tidy(() => {
    const scored = tf.reshape(tf.mul(nll, mask), [rows, -1]);
    const sums = tf.neg(tf.sum(scored, 1)) as tf.Tensor1D;
    return normalize ? (tf.div(sums, tf.maximum(tf.sum(tf.reshape(mask, [rows, -1]), 1), 1)) as tf.Tensor1D) : sums;
  });
}

export function preferenceLoss(policy: PairLogps, reference: PairLogps, options: PreferenceOptions): PreferenceResult {
  checkPreferenceOptions(options);
  const { loss, beta, labelSmoothing } = options;
  return tf.tidy(() => {
    const chosenRatio = tf.sub(policy.chosen, reference.chosen);
    const rejectedRatio = tf.sub(policy.rejected, reference.rejected);
    const h = tf.sub(chosenRatio, rejectedRatio);
    // -log sigma(x) is softplus(-x); tf.logSigmoid's gradient reads a tensor its own scope has freed (tfjs 4.22).
    const perPair =
      loss === 'ipo'
        ? tf.square(tf.sub(h, 1 / (2 * beta)))
        : tf.add(tf.mul(tf.softplus(tf.mul(h, -beta)), 1 - labelSmoothing), tf.mul(tf.softplus(tf.mul(h, beta)), labelSmoothing));
    return {
      loss: tf.mean(perPair) as tf.Scalar,
      chosenRewards: tf.mul(chosenRatio, beta) as tf.Tensor1D,
      rejectedRewards: tf.mul(rejectedRatio, beta) as tf.Tensor1D,
    };
  });
}

function checkPreferenceOptions({ loss, beta, labelSmoothing }: PreferenceOptions): void {
  if (!PREFERENCE_LOSSES.includes(loss)) throw new RangeError(`preference loss: expected one of ${PREFERENCE_LOSSES.join(', ')}, got ${loss}`);
  if (!(Number.isFinite(beta) && beta > 0)) throw new RangeError(`preference loss: beta must be a finite number > 0, got ${beta}`);
  if (!(labelSmoothing >= 0 && labelSmoothing < 0.5)) {
    throw new RangeError(`preference loss: label_smoothing must be in [0, 0.5), got ${labelSmoothing}`);
  }
  if (loss === 'ipo' && labelSmoothing > 0) throw new RangeError('preference loss: label_smoothing applies to the sigmoid losses, not ipo');
}
