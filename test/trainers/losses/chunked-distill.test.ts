import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/backend/index.ts';
import { Rng } from '../../../src/util/rng.ts';
import { chunkedFullDistillLoss, headTensorRows, type ChunkedDistillInput } from '../../../trainers/losses/chunked-distill.ts';
import { fullDistill, maskedMean, type DivergenceOptions } from '../../../trainers/losses/distill.ts';
import type { ChunkSizes } from '../../../trainers/losses/chunked-distill.ts';
import { expectGradientMatchesFiniteDifferences } from '../../helpers/finite-differences.ts';

await initBackend('wasm');

const MASK = [1, 1, 0, 1, 1, 1, 0, 1];

/** The loss's inputs with both heads as resident tensors. */
interface TestInput extends Omit<ChunkedDistillInput, 'studentHead' | 'teacherHead'> {
  studentHead: tf.Tensor2D; // [H, Vs]
  teacherHead: tf.Tensor2D; // [Ht, Vt]
}

function randomInput(seed: number, { N = 8, H = 6, Ht = 5, Vs = 20, Vt = 20 } = {}): TestInput {
  const rng = new Rng(seed);
  const random = (rows: number, cols: number, scale: number) =>
    tf.tensor2d(Array.from({ length: rows * cols }, () => rng.normal() * scale), [rows, cols]);
  return {
    studentHidden: random(N, H, 1),
    studentHead: random(H, Vs, 0.8),
    teacherHidden: random(N, Ht, 1),
    teacherHead: random(Ht, Vt, 1),
    mask: tf.tensor1d(MASK.slice(0, N)),
  };
}

function chunkedResult(input: TestInput, options: DivergenceOptions & ChunkSizes) {
  return chunkedFullDistillLoss({ ...input, studentHead: headTensorRows(input.studentHead), teacherHead: headTensorRows(input.teacherHead) }, options);
}

function chunked(input: TestInput, options: DivergenceOptions & ChunkSizes): tf.Scalar {
  return chunkedResult(input, options).loss;
}

/** The same loss with the whole [N, V] logits materialized, through fullDistill and autodiff. */
function unchunkedLoss(input: TestInput, options: DivergenceOptions): tf.Scalar {
  const cap = (logits: tf.Tensor2D, c: number | null | undefined) => (c == null ? logits : (tf.mul(tf.tanh(tf.div(logits, c)), c) as tf.Tensor2D));
  const student = cap(tf.matMul(input.studentHidden, input.studentHead), input.studentCap);
  const teacher = cap(tf.matMul(input.teacherHidden, input.teacherHead), input.teacherCap);
  return maskedMean(fullDistill(student, teacher, options), input.mask);
}

type Loss = (input: TestInput) => tf.Scalar;

/** The loss and its gradient with respect to studentHidden (the heads are frozen). */
function lossAndGrads(loss: Loss, input: TestInput): { value: number; dHidden: Float32Array } {
  const f = (hidden: tf.Tensor) => loss({ ...input, studentHidden: hidden as tf.Tensor2D });
  const { value, grad } = tf.valueAndGrad(f)(input.studentHidden);
  return { value: value.dataSync()[0], dHidden: grad.dataSync() as Float32Array };
}

/** Equal to within `tolerance` of the largest magnitude: sums over chunks round differently than one sum. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  const scale = Math.max(...Array.from(expected, Math.abs));
  expect(scale, what).toBeGreaterThan(0);
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    expect(diff, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`).toBeLessThanOrEqual(tolerance * scale);
  }
}

const DIVERGENCES: [string, Pick<DivergenceOptions, 'divergence' | 'beta'>][] = [
  ['forward_kl', { divergence: 'forward_kl', beta: 0.5 }],
  ['reverse_kl', { divergence: 'reverse_kl', beta: 0.5 }],
  ['jsd beta 0.5', { divergence: 'jsd', beta: 0.5 }],
  ['jsd beta 0.3', { divergence: 'jsd', beta: 0.3 }],
  ['jsd beta 0', { divergence: 'jsd', beta: 0 }],
  ['jsd beta 1', { divergence: 'jsd', beta: 1 }],
];

const LAYOUTS = [
  { name: 'chunks divide N and V', rowChunk: 4, vocabChunk: 5, Vs: 20, Vt: 20 },
  { name: 'chunks do not divide N and V', rowChunk: 3, vocabChunk: 7, Vs: 20, Vt: 20 },
  { name: 'one chunk', rowChunk: 8, vocabChunk: 64, Vs: 20, Vt: 20 },
  { name: 'student vocabulary wider', rowChunk: 3, vocabChunk: 6, Vs: 23, Vt: 20 },
  { name: 'teacher vocabulary wider', rowChunk: 5, vocabChunk: 4, Vs: 18, Vt: 22 },
];

// Temperatures alternate over the layouts, so that each divergence meets both.
const CASES = DIVERGENCES.flatMap(([name, divergence]) =>
  LAYOUTS.map((layout, i) => {
    const temperature = i % 2 === 0 ? 1 : 2;
    return { label: `${name}, ${layout.name}, T ${temperature}`, divergence, layout, temperature };
  }),
);

/** One divergence of each gradient formula (jsd's endpoints are forward and reverse KL). */
const FORMULAS = DIVERGENCES.filter(([name]) => ['forward_kl', 'reverse_kl', 'jsd beta 0.3'].includes(name));

describe('chunkedFullDistillLoss', () => {
  it.each(CASES)('equals the unchunked loss, value and gradients: $label', ({ divergence, layout, temperature }) => {
    const input = randomInput(1, { Vs: layout.Vs, Vt: layout.Vt });
    const options = { ...divergence, temperature };
    const streamed = lossAndGrads((x) => chunked(x, { ...options, ...layout }), input);
    const whole = lossAndGrads((x) => unchunkedLoss(x, options), input);
    expectClose([streamed.value], [whole.value], 1e-5, 'loss');
    expectClose(streamed.dHidden, whole.dHidden, 1e-5, 'dHidden');
  });

  it.each(FORMULAS)('soft-caps either model\'s logits as Gemma 2 does (caps 1.5 and 2), value and gradients: %s', (_, divergence) => {
    const input = { ...randomInput(5, { Vs: 13, Vt: 11 }), studentCap: 1.5, teacherCap: 2 };
    const options = { ...divergence, temperature: 2, rowChunk: 3, vocabChunk: 4 };
    const streamed = lossAndGrads((x) => chunked(x, options), input);
    const whole = lossAndGrads((x) => unchunkedLoss(x, options), input);
    const uncapped = lossAndGrads((x) => unchunkedLoss(x, options), { ...input, studentCap: null, teacherCap: null });
    expect(Math.abs(uncapped.value - whole.value)).toBeGreaterThan(1e-2);
    expectClose([streamed.value], [whole.value], 1e-5, 'loss');
    expectClose(streamed.dHidden, whole.dHidden, 1e-5, 'dHidden');
  });

  it.each(FORMULAS)('has a written-out gradient that matches finite differences: %s', async (_, divergence) => {
    const input = randomInput(2, { Vs: 13, Vt: 11 });
    const options = { ...divergence, temperature: 2, rowChunk: 3, vocabChunk: 4 };
    const ofHidden = (x: tf.Tensor) => chunked({ ...input, studentHidden: x as tf.Tensor2D }, options);
    await expectGradientMatchesFiniteDifferences(ofHidden, input.studentHidden, { samples: 10, seed: 1 });
  });

  it.each(LAYOUTS)('gives the top-1 agreement over the masked positions and the shared vocabulary: $name', ({ rowChunk, vocabChunk, Vs, Vt }) => {
    const base = randomInput(7, { Vs, Vt }); // student H 6, teacher H 5
    const V = Math.min(Vs, Vt);
    // Over the shared range the student's head is the teacher's (and a zero sixth row), and its even rows are
    // the teacher's hidden states: those rows have the teacher's logits there, so some rows agree.
    const teacherHead = base.teacherHead.arraySync();
    const studentHead = base.studentHead.arraySync().map((row, r) => row.map((x, c) => (c < V ? (r < 5 ? teacherHead[r][c] : 0) : x)));
    const teacherHidden = base.teacherHidden.arraySync();
    const studentHidden = base.studentHidden.arraySync().map((row, i) => (i % 2 === 0 ? [...teacherHidden[i], 0] : row));
    const input = { ...base, studentHead: tf.tensor2d(studentHead), studentHidden: tf.tensor2d(studentHidden) };
    const argMax = (logits: tf.Tensor) => tf.argMax(tf.slice(logits, [0, 0], [-1, V]), 1).arraySync() as number[];
    const studentTop = argMax(tf.matMul(input.studentHidden, input.studentHead));
    const teacherTop = argMax(tf.matMul(base.teacherHidden, base.teacherHead));
    const agree = MASK.map((m, i) => m * (studentTop[i] === teacherTop[i] ? 1 : 0));
    const expected = agree.reduce((a, b) => a + b, 0) / MASK.reduce((a, b) => a + b, 0);
    expect(expected).toBeGreaterThan(0);
    expect(expected).toBeLessThan(1);
    const { top1Agreement } = chunkedResult(input, { divergence: 'forward_kl', beta: 0, temperature: 2, rowChunk, vocabChunk });
    expect(top1Agreement.dataSync()[0]).toBeCloseTo(expected, 6);
  });

  it('is 0 with zero gradients when every position is masked', () => {
    const input = { ...randomInput(3), mask: tf.zeros([8]) as tf.Tensor1D };
    const options = { divergence: 'jsd', beta: 0.5, temperature: 1, rowChunk: 3, vocabChunk: 7 } as const;
    const { value, dHidden } = lossAndGrads((x) => chunked(x, options), input);
    expect(value).toBe(0);
    expect(dHidden.every((g) => g === 0)).toBe(true);
  });

  it('leaves no tensor behind across repeated loss and gradient computations', () => {
    const input = randomInput(4, { Vs: 21, Vt: 19 });
    const variables = { ...input, studentHidden: tf.variable(input.studentHidden) as tf.Tensor2D };
    const before = tf.memory().numTensors;
    for (let step = 0; step < 2; step++) {
      for (const [, divergence] of FORMULAS) {
        const options = { ...divergence, temperature: 2, rowChunk: 3, vocabChunk: 5 };
        const { value, grads } = tf.variableGrads(() => chunked(variables, options));
        tf.dispose([value, ...Object.values(grads)]);
        tf.tidy(() => {
          tf.variableGrads(() => chunked(variables, options));
        });
      }
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad chunk sizes and shapes, naming them', () => {
    const input = randomInput(5);
    const options = { divergence: 'forward_kl', beta: 0.5, temperature: 1, rowChunk: 4, vocabChunk: 4 } as const;
    expect(() => chunked(input, { ...options, rowChunk: 0 })).toThrow(/options\.rowChunk/);
    expect(() => chunked(input, { ...options, vocabChunk: 2.5 })).toThrow(/options\.vocabChunk/);
    expect(() => chunked(input, { ...options, temperature: -1 })).toThrow(/options\.temperature/);
    const narrowHead = tf.slice(input.studentHead, [0, 0], [5, 20]) as tf.Tensor2D;
    expect(() => chunked({ ...input, studentHead: narrowHead }, options)).toThrow(/studentHead/);
    expect(() => chunked({ ...input, mask: tf.ones([7]) as tf.Tensor1D }, options)).toThrow(/mask/);
  });
});
