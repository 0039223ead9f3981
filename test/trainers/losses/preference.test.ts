import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/backend/index.ts';
import { Rng } from '../../../src/util/rng.ts';
import { tokenNll } from '../../../trainers/losses/cross-entropy.ts';
import { normalizesLength, preferenceLoss, sequenceLogps, type PreferenceOptions } from '../../../trainers/losses/preference.ts';
import { preferenceObjective } from '../../../trainers/losses/preference-objective.ts';
import type { Batch } from '../../../trainers/batches.ts';
import { tinyModel } from '../../helpers/tiny-model.ts';

await initBackend('wasm');

// Float64 references: TRL's formulas written out on plain numbers.

function logSoftmaxAt(row: number[], target: number): number {
  const max = Math.max(...row);
  return row[target] - max - Math.log(row.reduce((sum, x) => sum + Math.exp(x - max), 0));
}

/** Each row's summed (or mean) log-probability of its scored targets; logits are [rows * T][V]. */
function referenceSequenceLogps(logits: number[][], targets: number[], mask: number[], rows: number, normalize: boolean): number[] {
  const T = targets.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    let sum = 0;
    let count = 0;
    for (let t = r * T; t < (r + 1) * T; t++) {
      if (mask[t] === 0) continue;
      sum += logSoftmaxAt(logits[t], targets[t]);
      count++;
    }
    return normalize ? sum / Math.max(count, 1) : sum;
  });
}

const logSigmoid = (x: number) => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));

function referencePreference(policy: number[], reference: number[], pairs: number, { loss, beta, labelSmoothing: e }: PreferenceOptions) {
  const perPair = Array.from({ length: pairs }, (_, p) => {
    const h = policy[p] - policy[pairs + p] - (reference[p] - reference[pairs + p]);
    return loss === 'ipo' ? (h - 1 / (2 * beta)) ** 2 : -(1 - e) * logSigmoid(beta * h) - e * logSigmoid(-beta * h);
  });
  return {
    loss: perPair.reduce((a, b) => a + b, 0) / pairs,
    chosenRewards: Array.from({ length: pairs }, (_, p) => beta * (policy[p] - reference[p])),
    rejectedRewards: Array.from({ length: pairs }, (_, p) => beta * (policy[pairs + p] - reference[pairs + p])),
  };
}

/** A batch of `pairs` chosen rows then `pairs` rejected rows, T positions each; some positions unscored. */
function pairBatch(seed: number, pairs: number, T: number, V: number) {
  const rng = new Rng(seed);
  const rows = 2 * pairs;
  const logits = Array.from({ length: rows * T }, () => Array.from({ length: V }, () => rng.normal() * 2));
  const targets = Array.from({ length: rows * T }, () => rng.int(V));
  // The prompt (first two positions) is never scored; completions end at different lengths.
  const mask = Array.from({ length: rows * T }, (_, i) => (i % T >= 2 && i % T < 2 + ((Math.floor(i / T) * 3) % (T - 2)) + 1 ? 1 : 0));
  const reference = Array.from({ length: rows }, () => -5 + rng.normal());
  return { rows, logits, targets, mask, reference };
}

const VARIANTS: Array<[string, PreferenceOptions]> = [
  ['sigmoid (DPO)', { loss: 'sigmoid', beta: 0.1, labelSmoothing: 0 }],
  ['sigmoid with label smoothing (cDPO)', { loss: 'sigmoid', beta: 0.5, labelSmoothing: 0.2 }],
  ['sigmoid_norm (length-normalised)', { loss: 'sigmoid_norm', beta: 2, labelSmoothing: 0 }],
  ['ipo', { loss: 'ipo', beta: 0.3, labelSmoothing: 0 }],
];

describe('sequenceLogps', () => {
  it.each([false, true])('equals the float64 sum (normalize %s: mean) of each row\'s scored log-probabilities', (normalize) => {
    const { rows, logits, targets, mask } = pairBatch(1, 3, 7, 11);
    mask.fill(0, 0, 7); // a row with nothing scored counts 0
    const actual = tf.tidy(() => sequenceLogps(tokenNll(tf.tensor2d(logits), tf.tensor1d(targets, 'int32')), tf.tensor1d(mask), rows, normalize).arraySync());
    const expected = referenceSequenceLogps(logits, targets, mask, rows, normalize);
    expect(expected[0]).toBe(0);
    actual.forEach((value, r) => expect(value).toBeCloseTo(expected[r], 4));
  });
});

describe('preferenceLoss', () => {
  it.each(VARIANTS)('%s: loss and rewards equal the float64 formulas', (_, options) => {
    const pairs = 4;
    const { rows, logits, targets, mask, reference } = pairBatch(2, pairs, 6, 9);
    const normalize = normalizesLength(options.loss);
    const policy = referenceSequenceLogps(logits, targets, mask, rows, normalize);
    const expected = referencePreference(policy, reference, pairs, options);
    const actual = tf.tidy(() => {
      const split = (values: number[]) => ({ chosen: tf.tensor1d(values.slice(0, pairs)), rejected: tf.tensor1d(values.slice(pairs)) });
      const result = preferenceLoss(split(policy), split(reference), options);
      return { loss: result.loss.arraySync(), chosen: result.chosenRewards.arraySync(), rejected: result.rejectedRewards.arraySync() };
    });
    expect(actual.loss).toBeCloseTo(expected.loss, 5);
    actual.chosen.forEach((value, p) => expect(value).toBeCloseTo(expected.chosenRewards[p], 5));
    actual.rejected.forEach((value, p) => expect(value).toBeCloseTo(expected.rejectedRewards[p], 5));
  });

  it.each(VARIANTS)('%s: the gradient through the logits equals float64 finite differences', (_, options) => {
    const pairs = 2;
    const T = 5;
    const V = 7;
    const { rows, logits, targets, mask, reference } = pairBatch(3, pairs, T, V);
    const normalize = normalizesLength(options.loss);
    const lossOf = (values: number[][]) => referencePreference(referenceSequenceLogps(values, targets, mask, rows, normalize), reference, pairs, options).loss;

    const gradient = tf.tidy(() => {
      const f = (x: tf.Tensor) => {
        const logps = sequenceLogps(tokenNll(x as tf.Tensor2D, tf.tensor1d(targets, 'int32')), tf.tensor1d(mask), rows, normalize);
        const [chosen, rejected] = tf.split(logps, 2) as [tf.Tensor1D, tf.Tensor1D];
        const ref = tf.tensor1d(reference);
        const [refChosen, refRejected] = tf.split(ref, 2) as [tf.Tensor1D, tf.Tensor1D];
        return preferenceLoss({ chosen, rejected }, { chosen: refChosen, rejected: refRejected }, options).loss;
      };
      return tf.grad(f)(tf.tensor2d(logits)).arraySync() as number[][];
    });

    const step = 1e-5;
    let largest = 0;
    for (let i = 0; i < logits.length; i++) {
      for (let j = 0; j < V; j++) {
        const plus = logits.map((row) => [...row]);
        const minus = logits.map((row) => [...row]);
        plus[i][j] += step;
        minus[i][j] -= step;
        const expected = (lossOf(plus) - lossOf(minus)) / (2 * step);
        largest = Math.max(largest, Math.abs(expected));
        expect(Math.abs(gradient[i][j] - expected), `[${i}][${j}]`).toBeLessThan(2e-5 + 1e-3 * Math.abs(expected));
      }
    }
    expect(largest).toBeGreaterThan(1e-3); // the check compared real gradients, not zeros
  });

  it('refuses options TRL does not define', () => {
    const one = { chosen: tf.tensor1d([0]), rejected: tf.tensor1d([0]) };
    expect(() => preferenceLoss(one, one, { loss: 'hinge' as never, beta: 0.1, labelSmoothing: 0 })).toThrow(/expected one of sigmoid, sigmoid_norm, ipo, got hinge/);
    expect(() => preferenceLoss(one, one, { loss: 'sigmoid', beta: 0, labelSmoothing: 0 })).toThrow(/beta must be a finite number > 0, got 0/);
    expect(() => preferenceLoss(one, one, { loss: 'sigmoid', beta: 0.1, labelSmoothing: 0.5 })).toThrow(/label_smoothing must be in \[0, 0.5\), got 0.5/);
    expect(() => preferenceLoss(one, one, { loss: 'ipo', beta: 0.1, labelSmoothing: 0.1 })).toThrow(/not ipo/);
  });
});

describe('preferenceObjective', () => {
  const WITH_RPO: Array<[string, PreferenceOptions & { rpoAlpha: number | null }]> = [
    ...VARIANTS.map(([name, options]): [string, PreferenceOptions & { rpoAlpha: number | null }] => [name, { ...options, rpoAlpha: null }]),
    ['sigmoid with RPO (chosen cross-entropy added)', { loss: 'sigmoid', beta: 0.1, labelSmoothing: 0, rpoAlpha: 0.7 }],
  ];
  it.each(WITH_RPO)('%s: loss and TRL\'s metrics on a model\'s batch of pairs equal the float64 formulas over its logits', (_, options) => {
    const model = tinyModel();
    const pairs = 3;
    const T = 6;
    const { rows, targets, mask, reference } = pairBatch(4, pairs, T, model.config.vocabSize);
    const rng = new Rng(5);
    const inputs = Int32Array.from({ length: rows * T }, () => rng.int(model.config.vocabSize));
    const batch: Batch = {
      inputs,
      targets: Int32Array.from(targets),
      mask: Float32Array.from(mask),
      batchSize: rows,
      seqLen: T,
      tokens: mask.reduce((a: number, m) => a + m, 0),
      pairs,
      referenceLogps: Float32Array.from(reference),
    };
    const logits = tf.tidy(() => tf.reshape(model.forward(tf.tensor2d(inputs, [rows, T], 'int32')), [rows * T, -1]).arraySync() as number[][]);
    const normalize = normalizesLength(options.loss);
    const counts = Array.from({ length: rows }, (_, r) => mask.slice(r * T, (r + 1) * T).reduce((a: number, m) => a + m, 0));
    const policy = referenceSequenceLogps(logits, targets, mask, rows, normalize);
    const ref = normalize ? reference.map((sum, r) => sum / counts[r]) : reference;
    const expected = referencePreference(policy, ref, pairs, options);
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    // RPO: the mean negative log-likelihood over the chosen rows' scored tokens.
    const chosenTokens = Array.from({ length: pairs * T }, (_, i) => i).filter((i) => mask[i] === 1);
    const chosenNll = mean(chosenTokens.map((i) => -logSoftmaxAt(logits[i], targets[i])));
    const expectedLoss = expected.loss + (options.rpoAlpha ?? 0) * chosenNll;

    const observed: Record<string, number> = {};
    const loss = tf.tidy(() => preferenceObjective(model, model.project, options)(batch, (name, value) => (observed[name] = value.dataSync()[0])).dataSync()[0]);
    expect(loss).toBeCloseTo(expectedLoss, 4);
    if (options.rpoAlpha !== null) expect(observed.nll_loss).toBeCloseTo(chosenNll, 4);
    else expect(observed.nll_loss).toBeUndefined();
    expect(observed['rewards/chosen']).toBeCloseTo(mean(expected.chosenRewards), 4);
    expect(observed['rewards/rejected']).toBeCloseTo(mean(expected.rejectedRewards), 4);
    expect(observed['rewards/margins']).toBeCloseTo(mean(expected.chosenRewards.map((c, p) => c - expected.rejectedRewards[p])), 4);
    expect(observed['rewards/accuracies']).toBeCloseTo(mean(expected.chosenRewards.map((c, p) => (c > expected.rejectedRewards[p] ? 1 : 0))), 6);
    expect(observed['logps/chosen']).toBeCloseTo(mean(policy.slice(0, pairs)), 4);
    expect(observed['logps/rejected']).toBeCloseTo(mean(policy.slice(pairs)), 4);
    model.dispose();
  });
});
