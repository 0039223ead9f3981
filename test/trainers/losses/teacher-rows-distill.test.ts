import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/backend/index.ts';
import { Rng } from '../../../src/util/rng.ts';
import { fullDistill, maskedMean, type DivergenceOptions } from '../../../trainers/losses/distill.ts';
import { teacherRowsDistill, type RowTeacher } from '../../../trainers/losses/teacher-rows-distill.ts';
import { expectGradientMatchesFiniteDifferences } from '../../helpers/finite-differences.ts';

await initBackend('wasm');

const MASK = [1, 1, 0, 1, 1, 1, 0, 1];

interface Case {
  studentLogits: tf.Tensor2D; // [N, Vs]
  teacherHidden: tf.Tensor2D; // [N, Ht]
  teacherHead: tf.Tensor2D; // [Ht, Vt]
  mask: tf.Tensor1D;
}

function randomCase(seed: number, { N = 8, Ht = 5, Vs = 20, Vt = 20 } = {}): Case {
  const rng = new Rng(seed);
  const random = (rows: number, cols: number, scale: number) =>
    tf.tensor2d(Array.from({ length: rows * cols }, () => rng.normal() * scale), [rows, cols]);
  return { studentLogits: random(N, Vs, 2), teacherHidden: random(N, Ht, 1), teacherHead: random(Ht, Vt, 1), mask: tf.tensor1d(MASK.slice(0, N)) };
}

/** The teacher of a case, counting the rows its logits are asked for. */
function teacherOf(c: Case, asked: number[] = []): RowTeacher {
  return {
    hidden: c.teacherHidden,
    logits: (rows) => {
      asked.push(rows.shape[0]);
      return tf.matMul(rows, c.teacherHead) as tf.Tensor2D;
    },
  };
}

/** The same loss with the teacher's whole [N, Vt] logits, through fullDistill and autodiff. */
function wholeLoss(c: Case, logits: tf.Tensor2D, options: DivergenceOptions): tf.Scalar {
  return maskedMean(fullDistill(logits, tf.matMul(c.teacherHidden, c.teacherHead) as tf.Tensor2D, options), c.mask);
}

function valueAndGrad(loss: (logits: tf.Tensor2D) => tf.Scalar, logits: tf.Tensor2D): { value: number; grad: Float32Array } {
  const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => loss(x as tf.Tensor2D))(logits);
  return { value: value.dataSync()[0], grad: grad.dataSync() as Float32Array };
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  const scale = Math.max(...Array.from(expected, Math.abs));
  expect(scale, what).toBeGreaterThan(0);
  for (let i = 0; i < expected.length; i++) {
    expect(Math.abs(actual[i] - expected[i]), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`).toBeLessThanOrEqual(tolerance * scale);
  }
}

const DIVERGENCES: [string, Pick<DivergenceOptions, 'divergence' | 'beta'>][] = [
  ['forward_kl', { divergence: 'forward_kl', beta: 0.5 }],
  ['reverse_kl', { divergence: 'reverse_kl', beta: 0.5 }],
  ['jsd beta 0.3', { divergence: 'jsd', beta: 0.3 }],
  ['jsd beta 0', { divergence: 'jsd', beta: 0 }],
];

const LAYOUTS = [
  { name: 'chunks divide N', rowChunk: 4, Vs: 20, Vt: 20 },
  { name: 'chunks do not divide N', rowChunk: 3, Vs: 20, Vt: 20 },
  { name: 'one chunk', rowChunk: 64, Vs: 20, Vt: 20 },
  { name: 'student vocabulary wider', rowChunk: 3, Vs: 23, Vt: 20 },
  { name: 'teacher vocabulary wider', rowChunk: 5, Vs: 18, Vt: 22 },
];

const CASES = DIVERGENCES.flatMap(([name, divergence]) =>
  LAYOUTS.map((layout, i) => {
    const temperature = i % 2 === 0 ? 1 : 2;
    return { label: `${name}, ${layout.name}, T ${temperature}`, divergence, layout, temperature };
  }),
);

describe('teacherRowsDistill', () => {
  it.each(CASES)('equals fullDistill on whole teacher logits, value and gradient: $label', ({ divergence, layout, temperature }) => {
    const c = randomCase(1, { Vs: layout.Vs, Vt: layout.Vt });
    const options = { ...divergence, temperature };
    const asked: number[] = [];
    const rows = valueAndGrad((x) => teacherRowsDistill(x, teacherOf(c, asked), c.mask, { ...options, rowChunk: layout.rowChunk }).loss, c.studentLogits);
    const whole = valueAndGrad((x) => wholeLoss(c, x, options), c.studentLogits);
    expectClose([rows.value], [whole.value], 1e-5, 'loss');
    expectClose(rows.grad, whole.grad, 1e-5, 'gradient');
    // No call asks for more rows than a chunk; the forward pass makes each chunk once (loss and agreement
    // together), the backward pass once more.
    expect(Math.max(...asked)).toBeLessThanOrEqual(layout.rowChunk);
    expect(asked.reduce((a, b) => a + b, 0)).toBe(2 * 8);
    if (layout.Vs > layout.Vt) {
      const past = rows.grad.filter((_, i) => i % layout.Vs >= layout.Vt); // student columns the teacher lacks
      expect(past.every((g) => g === 0)).toBe(true);
    }
  });

  it.each(LAYOUTS)('gives the top-1 agreement over the masked positions and the shared vocabulary: $name', ({ rowChunk, Vs, Vt }) => {
    const c = randomCase(6, { Vs, Vt });
    const V = Math.min(Vs, Vt);
    const teacherLogits = tf.matMul(c.teacherHidden, c.teacherHead).arraySync() as number[][];
    // Even rows copy the teacher's logits over the shared range, so that some rows agree.
    const studentLogits = c.studentLogits.arraySync().map((row, i) => (i % 2 === 0 ? row.map((x, j) => (j < V ? teacherLogits[i][j] : x - 100)) : row));
    const { top1Agreement } = teacherRowsDistill(tf.tensor2d(studentLogits), teacherOf(c), c.mask, { divergence: 'forward_kl', beta: 0, temperature: 2, rowChunk });
    const argMax = (rows: number[][]) => rows.map((row) => row.slice(0, V).indexOf(Math.max(...row.slice(0, V))));
    const student = argMax(studentLogits);
    const teacher = argMax(teacherLogits);
    const agree = MASK.map((m, i) => m * (student[i] === teacher[i] ? 1 : 0));
    const expected = agree.reduce((a, b) => a + b, 0) / MASK.reduce((a, b) => a + b, 0);
    expect(expected).toBeGreaterThan(0);
    expect(expected).toBeLessThan(1);
    expect(top1Agreement.dataSync()[0]).toBeCloseTo(expected, 6);
  });

  it.each(DIVERGENCES.slice(0, 3))('has a written-out gradient that matches finite differences: %s', async (_, divergence) => {
    const c = randomCase(2, { Vs: 13, Vt: 11 });
    const options = { ...divergence, temperature: 2, rowChunk: 3 };
    await expectGradientMatchesFiniteDifferences((x) => teacherRowsDistill(x as tf.Tensor2D, teacherOf(c), c.mask, options).loss, c.studentLogits, {
      samples: 10,
      seed: 1,
    });
  });

  it('is 0 with a zero gradient when every position is masked', () => {
    const c = { ...randomCase(3), mask: tf.zeros([8]) as tf.Tensor1D };
    const { value, grad } = valueAndGrad((x) => teacherRowsDistill(x, teacherOf(c), c.mask, { divergence: 'jsd', beta: 0.5, temperature: 1, rowChunk: 3 }).loss, c.studentLogits);
    expect(value).toBe(0);
    expect(grad.every((g) => g === 0)).toBe(true);
  });

  it('leaves no tensor behind across repeated loss and gradient computations', () => {
    const c = randomCase(4, { Vs: 21, Vt: 19 });
    const logits = tf.variable(c.studentLogits);
    const before = tf.memory().numTensors;
    for (const [, divergence] of DIVERGENCES) {
      const options = { ...divergence, temperature: 2, rowChunk: 3 };
      const { value, grads } = tf.variableGrads(() => teacherRowsDistill(logits, teacherOf(c), c.mask, options).loss);
      tf.dispose([value, ...Object.values(grads)]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad options, naming them', () => {
    const c = randomCase(5);
    const options = { divergence: 'forward_kl', beta: 0.5, temperature: 1, rowChunk: 4 } as const;
    expect(() => teacherRowsDistill(c.studentLogits, teacherOf(c), c.mask, { ...options, rowChunk: 0 })).toThrow(/options\.rowChunk/);
    expect(() => teacherRowsDistill(c.studentLogits, teacherOf(c), c.mask, { ...options, temperature: 0 })).toThrow(/options\.temperature/);
  });
});
