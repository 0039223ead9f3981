import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/util/rng.ts';
import { crossEntropy } from '../../../trainers/losses/cross-entropy.ts';
import { initBackend } from '../../../src/backend/index.ts';

await initBackend('wasm');

/** The textbook definition in float64: mean over scored rows of logSumExp(row) - row[target]. */
function referenceLoss(logits: number[][], targets: number[], mask: number[]): number {
  let total = 0;
  logits.forEach((row, i) => {
    const max = Math.max(...row);
    const logZ = max + Math.log(row.reduce((sum, x) => sum + Math.exp(x - max), 0));
    total += (logZ - row[targets[i]]) * mask[i];
  });
  return total / Math.max(1, mask.reduce((a, b) => a + b, 0));
}

function randomLogits(rng: Rng, rows: number, vocab: number, scale: number): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: vocab }, () => rng.normal() * scale));
}

describe('crossEntropy', () => {
  it('equals the float64 definition, also when target probabilities underflow float32', () => {
    const rng = new Rng(1);
    for (const scale of [1, 30, 300]) {
      const logits = randomLogits(rng, 6, 50, scale);
      const targets = [0, 7, 49, 3, 3, 21];
      const mask = [1, 1, 0, 1, 1, 1];
      const loss = crossEntropy(tf.tensor2d(logits), tf.tensor1d(targets, 'int32'), tf.tensor1d(mask));
      const expected = referenceLoss(logits, targets, mask);
      expect(Math.abs(loss.dataSync()[0] - expected), `scale ${scale}`).toBeLessThan(1e-5 * Math.max(1, expected));
    }
  });

  it('has the gradient (softmax - onehot) * mask / count', () => {
    const rng = new Rng(2);
    const logits = randomLogits(rng, 4, 9, 2);
    const targets = [8, 0, 4, 4];
    const mask = [1, 0, 1, 1];
    const loss = (l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, tf.tensor1d(targets, 'int32'), tf.tensor1d(mask));
    const grad = tf.grad(loss)(tf.tensor2d(logits));
    const actual = grad.arraySync() as number[][];
    logits.forEach((row, i) => {
      const sum = row.reduce((s, x) => s + Math.exp(x), 0);
      row.forEach((x, j) => {
        const expected = ((Math.exp(x) / sum - (j === targets[i] ? 1 : 0)) * mask[i]) / 3;
        expect(actual[i][j]).toBeCloseTo(expected, 6);
      });
    });
  });

  it('is 0 with a zero gradient when every position is masked', () => {
    const logits = tf.tensor2d([[1, 2, 3]]);
    const f = (l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, tf.tensor1d([2], 'int32'), tf.tensor1d([0]));
    expect(f(logits).dataSync()[0]).toBe(0);
    expect(Array.from(tf.grad(f)(logits).dataSync())).toEqual([0, 0, 0]);
  });
});
