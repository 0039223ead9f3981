import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/backend/index.ts';
import { Rng } from '../../../src/util/rng.ts';
import { crossEntropy } from '../../../trainers/losses/cross-entropy.ts';
import {
  combineLosses,
  fullDistill,
  maskedMean,
  top1Agreement,
  topKDistill,
  type DivergenceOptions,
  type TopKOptions,
} from '../../../trainers/losses/distill.ts';
import { expectGradientMatchesFiniteDifferences } from '../../helpers/finite-differences.ts';

await initBackend('wasm');

// ---- The definitions in float64, written from the formulas, sharing no code with the implementation ----

const TAIL_FLOOR = 1e-8;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const normalize = (xs: number[]) => xs.map((x) => x / sum(xs));

function softmax64(x: number[]): number[] {
  const max = Math.max(...x);
  return normalize(x.map((v) => Math.exp(v - max)));
}

function kl64(a: number[], b: number[]): number {
  return sum(a.map((ai, i) => (ai === 0 ? 0 : ai * Math.log(ai / b[i]))));
}

function divergence64(p: number[], q: number[], { divergence, beta }: DivergenceOptions): number {
  if (divergence === 'forward_kl' || (divergence === 'jsd' && beta === 0)) return kl64(p, q);
  if (divergence === 'reverse_kl' || (divergence === 'jsd' && beta === 1)) return kl64(q, p);
  const m = p.map((pi, i) => beta * pi + (1 - beta) * q[i]);
  return beta * kl64(p, m) + (1 - beta) * kl64(q, m);
}

function topKRow64(z: number[], ids: number[], logprobs: number[], options: TopKOptions): number {
  const T = options.temperature;
  const power = (options.storedTemperature ?? 1) / T;
  const kept = ids.map((id, j) => ({ id, lp: logprobs[j] })).filter((entry) => entry.lp > -Infinity);
  if (kept.length === 0) return 0;
  const q = softmax64(z.map((v) => v / T));
  const qK = kept.map((entry) => q[entry.id]);
  if (options.tail === 'renormalize') {
    const p = normalize(kept.map((entry) => Math.exp(entry.lp * power)));
    return T * T * divergence64(p, normalize(qK), options);
  }
  const storedP = kept.map((entry) => Math.exp(entry.lp));
  const p = normalize([...storedP, Math.max(1 - sum(storedP), TAIL_FLOOR)].map((x) => x ** power));
  const inTopK = new Set(kept.map((entry) => entry.id));
  const qTail = Math.max(sum(q.filter((_, j) => !inTopK.has(j))), TAIL_FLOOR);
  return T * T * divergence64(p, [...qK, qTail], options);
}

function fullRow64(zs: number[], zt: number[], options: DivergenceOptions): number {
  const T = options.temperature;
  const V = Math.min(zs.length, zt.length);
  const q = softmax64(zs.slice(0, V).map((v) => v / T));
  const p = softmax64(zt.slice(0, V).map((v) => v / T));
  return T * T * divergence64(p, q, options);
}

/** Central differences of a float64 function: with h = 1e-6 they are exact to about 1e-9. */
function numericGradient64(f: (x: number[][]) => number, x: number[][], h = 1e-6): number[][] {
  return x.map((row, i) =>
    row.map((_, j) => {
      const at = (delta: number) => f(x.map((r, a) => r.map((v, b) => (a === i && b === j ? v + delta : v))));
      return (at(h) - at(-h)) / (2 * h);
    }),
  );
}

// ---- Inputs ----

function matrix(rng: Rng, rows: number, cols: number, scale: number): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => Math.fround(rng.normal() * scale)));
}

interface TopKCase {
  student: number[][]; // [N, V]
  ids: number[][]; // [N, k]
  logprobs: number[][]; // [N, k], padding -Infinity
}

/**
 * Teacher top-k drawn from a random teacher at `storedTemperature`, k distinct ids per row. Row 1 has two
 * padding entries (id 0) besides a real id 0; row 2 has a padding entry while id 0 is not among its ids, so
 * id 0 must stay in its tail; row 3 is all padding.
 */
function topKCase(seed: number, storedTemperature: number, { N = 5, V = 10, k = 4 } = {}): TopKCase {
  const rng = new Rng(seed);
  const student = matrix(rng, N, V, 1.5);
  const teacher = matrix(rng, N, V, 2);
  const ids: number[][] = [];
  const logprobs: number[][] = [];
  teacher.forEach((row, i) => {
    const logZ = Math.log(sum(row.map((v) => Math.exp(v / storedTemperature))));
    const rowIds = rng.shuffle(Array.from({ length: V - 1 }, (_, j) => j + 1)).slice(0, k);
    if (i === 1) rowIds[0] = 0;
    ids.push(rowIds);
    logprobs.push(rowIds.map((id) => Math.fround(row[id] / storedTemperature - logZ)));
  });
  const pad = (i: number, j: number) => {
    ids[i][j] = 0;
    logprobs[i][j] = -Infinity;
  };
  pad(1, k - 1);
  pad(1, k - 2);
  pad(2, 1);
  for (let j = 0; j < k; j++) pad(3, j);
  return { student, ids, logprobs };
}

function topKTensors(c: TopKCase) {
  return { ids: tf.tensor2d(c.ids, undefined, 'int32'), logprobs: tf.tensor2d(c.logprobs) };
}

const DIVERGENCES: [string, Pick<DivergenceOptions, 'divergence' | 'beta'>][] = [
  ['forward_kl', { divergence: 'forward_kl', beta: 0.5 }],
  ['reverse_kl', { divergence: 'reverse_kl', beta: 0.5 }],
  ['jsd beta 0.5', { divergence: 'jsd', beta: 0.5 }],
  ['jsd beta 0.2', { divergence: 'jsd', beta: 0.2 }],
  ['jsd beta 0 (forward KL)', { divergence: 'jsd', beta: 0 }],
  ['jsd beta 1 (reverse KL)', { divergence: 'jsd', beta: 1 }],
];
const TEMPERATURES = [
  { temperature: 1, storedTemperature: 1 },
  { temperature: 2, storedTemperature: 2 },
  { temperature: 2, storedTemperature: 1 },
  { temperature: 0.7, storedTemperature: 1.5 },
];
const TOP_K_CASES = DIVERGENCES.flatMap(([name, divergence]) =>
  TEMPERATURES.flatMap((temps) =>
    (['bucket', 'renormalize'] as const).map((tail) => ({
      label: `${name}, ${tail}, T ${temps.temperature}, stored T ${temps.storedTemperature}`,
      options: { ...divergence, ...temps, tail } satisfies TopKOptions,
    })),
  ),
);

/** Row weights for the scalar whose gradient is checked, so that a row mix-up cannot cancel out. */
const ROW_WEIGHTS = [1, 0.5, -0.75, 2, 1.25];

function expectClose(actual: ArrayLike<number>, expected: number[], atol: number, rtol: number, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  expected.forEach((e, i) => {
    expect(Math.abs(actual[i] - e), `${what}[${i}]: ${actual[i]} vs ${e}`).toBeLessThanOrEqual(atol + rtol * Math.abs(e));
  });
}

describe('topKDistill', () => {
  it.each(TOP_K_CASES)('equals the float64 definition: $label', ({ options }) => {
    const c = topKCase(11, options.storedTemperature);
    const { ids, logprobs } = topKTensors(c);
    const actual = topKDistill(tf.tensor2d(c.student), ids, logprobs, options).dataSync();
    const expected = c.student.map((z, i) => topKRow64(z, c.ids[i], c.logprobs[i], options));
    expect(expected[3]).toBe(0);
    expectClose(actual, expected, 1e-6, 1e-5, 'per-position loss');
  });

  it.each(TOP_K_CASES)('has the gradient of the float64 definition: $label', ({ options }) => {
    const c = topKCase(12, options.storedTemperature);
    const { ids, logprobs } = topKTensors(c);
    const weights = tf.tensor1d(ROW_WEIGHTS);
    const f = (x: tf.Tensor) => tf.sum(tf.mul(topKDistill(x as tf.Tensor2D, ids, logprobs, options), weights)) as tf.Scalar;
    const actual = tf.grad(f)(tf.tensor2d(c.student)).dataSync();
    const reference = (z: number[][]) =>
      sum(z.map((row, i) => ROW_WEIGHTS[i] * topKRow64(row, c.ids[i], c.logprobs[i], options)));
    expectClose(actual, numericGradient64(reference, c.student).flat(), 2e-5, 1e-3, 'gradient');
  });

  it('has gradients that match float32 finite differences', async () => {
    const c = topKCase(13, 1);
    const { ids, logprobs } = topKTensors(c);
    for (const options of [
      { divergence: 'jsd', beta: 0.5, temperature: 2, storedTemperature: 1, tail: 'bucket' },
      { divergence: 'reverse_kl', beta: 0.5, temperature: 1, tail: 'renormalize' },
    ] satisfies TopKOptions[]) {
      const f = (x: tf.Tensor) => tf.sum(topKDistill(x as tf.Tensor2D, ids, logprobs, options)) as tf.Scalar;
      await expectGradientMatchesFiniteDifferences(f, tf.tensor2d(c.student), { samples: 10 });
    }
  });

  it('is 0 between a distribution and itself when k = V', () => {
    const rng = new Rng(14);
    const V = 9;
    const z = matrix(rng, 3, V, 3);
    for (const { tail, temperature, storedTemperature } of [
      { tail: 'bucket', temperature: 1, storedTemperature: 1 },
      { tail: 'bucket', temperature: 2, storedTemperature: 2 },
      { tail: 'renormalize', temperature: 2, storedTemperature: 1 },
    ] as const) {
      const ids = z.map(() => rng.shuffle(Array.from({ length: V }, (_, j) => j)));
      const logprobs = z.map((row, i) => {
        const logZ = Math.log(sum(row.map((v) => Math.exp(v / storedTemperature))));
        return ids[i].map((id) => row[id] / storedTemperature - logZ);
      });
      for (const [, divergence] of DIVERGENCES) {
        const options = { ...divergence, tail, temperature, storedTemperature };
        const loss = topKDistill(tf.tensor2d(z), tf.tensor2d(ids, undefined, 'int32'), tf.tensor2d(logprobs), options);
        for (const value of loss.dataSync()) expect(Math.abs(value), JSON.stringify(options)).toBeLessThan(1e-6);
      }
    }
  });

  it('ignores padding entries: finite, and equal to the rows without them', () => {
    const c = topKCase(15, 1);
    const { ids, logprobs } = topKTensors(c);
    for (const [, divergence] of DIVERGENCES.slice(0, 3)) {
      for (const tail of ['bucket', 'renormalize'] as const) {
        const options = { ...divergence, tail, temperature: 2, storedTemperature: 1 };
        const padded = (x: tf.Tensor) => topKDistill(x as tf.Tensor2D, ids, logprobs, options);
        const values = padded(tf.tensor2d(c.student)).dataSync();
        const grads = tf.grad((x) => tf.sum(padded(x)))(tf.tensor2d(c.student)).arraySync() as number[][];
        c.student.forEach((row, i) => {
          const kept = c.logprobs[i].flatMap((lp, j) => (lp > -Infinity ? [j] : []));
          if (kept.length === 0) return;
          const rowIds = tf.tensor2d([kept.map((j) => c.ids[i][j])], [1, kept.length], 'int32');
          const rowLogprobs = tf.tensor2d([kept.map((j) => c.logprobs[i][j])], [1, kept.length]);
          const alone = (x: tf.Tensor) => topKDistill(x as tf.Tensor2D, rowIds, rowLogprobs, options);
          const what = `${JSON.stringify(options)} row ${i}`;
          expect(Math.abs(values[i] - alone(tf.tensor2d([row])).dataSync()[0]), what).toBeLessThan(1e-6);
          const rowGrad = tf.grad((x) => tf.sum(alone(x)))(tf.tensor2d([row])).dataSync();
          expectClose(grads[i], Array.from(rowGrad), 1e-7, 1e-5, `${what} gradient`);
          expect(grads[i].every(Number.isFinite), what).toBe(true);
        });
        expect(values[3]).toBe(0); // all padding: no loss, no gradient
        expect(grads[3].every((g) => g === 0)).toBe(true);
      }
    }
  });

  it('keeps a tiny student tail exact, and a tail that underflows at the floor with a finite gradient', () => {
    const c = topKCase(18, 1);
    // Row 0: the teacher's ids 14 nats above the rest, a tail near 1e-6 that 1 - sum(q_k) would get 10%
    // wrong in float32. Row 4: 200 nats above, a tail that is 0 in float32 (floored).
    const lift = (row: number, by: number) => c.ids[row].forEach((id) => (c.student[row][id] += by));
    lift(0, 14);
    lift(4, 200);
    const { ids, logprobs } = topKTensors(c);
    for (const [label, divergence] of DIVERGENCES.slice(0, 3)) {
      const options: TopKOptions = { ...divergence, tail: 'bucket', temperature: 1 };
      const loss = (x: tf.Tensor) => topKDistill(x as tf.Tensor2D, ids, logprobs, options);
      const expected = c.student.map((z, i) => topKRow64(z, c.ids[i], c.logprobs[i], options));
      expectClose(loss(tf.tensor2d(c.student)).dataSync(), expected, 1e-6, 1e-5, `${label} loss`);
      const weights = tf.tensor1d(ROW_WEIGHTS);
      const actual = tf.grad((x) => tf.sum(tf.mul(loss(x), weights)))(tf.tensor2d(c.student)).dataSync();
      const reference = (z: number[][]) => sum(z.map((row, i) => ROW_WEIGHTS[i] * topKRow64(row, c.ids[i], c.logprobs[i], options)));
      expect(actual.every(Number.isFinite), label).toBe(true);
      expectClose(actual, numericGradient64(reference, c.student).flat(), 2e-5, 1e-3, `${label} gradient`);
    }
  });

  it('takes jsd with beta 0 and 1 for forward and reverse KL, as TRL does', () => {
    const c = topKCase(16, 1);
    const { ids, logprobs } = topKTensors(c);
    const run = (divergence: DivergenceOptions['divergence'], beta: number) => {
      const options: TopKOptions = { divergence, beta, temperature: 1, tail: 'bucket' };
      return Array.from(topKDistill(tf.tensor2d(c.student), ids, logprobs, options).dataSync());
    };
    expect(run('jsd', 0)).toEqual(run('forward_kl', 0.5));
    expect(run('jsd', 1)).toEqual(run('reverse_kl', 0.5));
    expect(run('jsd', 0.5)).not.toEqual(run('forward_kl', 0.5));
  });

  it('rejects bad options and shapes, naming them', () => {
    const c = topKCase(17, 1);
    const { ids, logprobs } = topKTensors(c);
    const student = tf.tensor2d(c.student);
    const base: TopKOptions = { divergence: 'jsd', beta: 0.5, temperature: 1, tail: 'bucket' };
    expect(() => topKDistill(student, ids, logprobs, { ...base, temperature: 0 })).toThrow(/options\.temperature/);
    expect(() => topKDistill(student, ids, logprobs, { ...base, beta: 1.5 })).toThrow(/options\.beta/);
    expect(() => topKDistill(student, ids, logprobs, { ...base, storedTemperature: -1 })).toThrow(/storedTemperature/);
    expect(() => topKDistill(student, tf.cast(ids, 'float32'), logprobs, base)).toThrow(/teacherIds must be int32/);
    expect(() => topKDistill(student, ids, tf.slice(logprobs, [0, 0], [5, 2]), base)).toThrow(/one shape/);
    expect(() => topKDistill(tf.slice(student, [0, 0], [2, 10]), ids, logprobs, base)).toThrow(/rows/);
  });
});

describe('fullDistill', () => {
  const FULL_CASES = DIVERGENCES.flatMap(([name, divergence]) =>
    [1, 2].map((temperature) => ({ label: `${name}, T ${temperature}`, options: { ...divergence, temperature } })),
  );

  it.each(FULL_CASES)('equals the float64 definition and has its gradient: $label', ({ options }) => {
    const rng = new Rng(21);
    const [student, teacher] = [matrix(rng, 5, 8, 2), matrix(rng, 5, 8, 2)];
    const actual = fullDistill(tf.tensor2d(student), tf.tensor2d(teacher), options).dataSync();
    expectClose(actual, student.map((z, i) => fullRow64(z, teacher[i], options)), 1e-6, 1e-5, 'per-position loss');

    const weights = tf.tensor1d(ROW_WEIGHTS);
    const f = (x: tf.Tensor) =>
      tf.sum(tf.mul(fullDistill(x as tf.Tensor2D, tf.tensor2d(teacher), options), weights)) as tf.Scalar;
    const reference = (z: number[][]) => sum(z.map((row, i) => ROW_WEIGHTS[i] * fullRow64(row, teacher[i], options)));
    const grad = tf.grad(f)(tf.tensor2d(student)).dataSync();
    expectClose(grad, numericGradient64(reference, student).flat(), 2e-5, 1e-3, 'gradient');
  });

  it('has gradients that match float32 finite differences', async () => {
    const rng = new Rng(22);
    const teacher = tf.tensor2d(matrix(rng, 4, 7, 1));
    for (const options of [
      { divergence: 'forward_kl', beta: 0.5, temperature: 2 },
      { divergence: 'jsd', beta: 0.3, temperature: 1 },
    ] satisfies DivergenceOptions[]) {
      const f = (x: tf.Tensor) => tf.sum(fullDistill(x as tf.Tensor2D, teacher, options)) as tf.Scalar;
      await expectGradientMatchesFiniteDifferences(f, tf.tensor2d(matrix(rng, 4, 7, 1)), { samples: 10 });
    }
  });

  it('is 0 between a distribution and itself', () => {
    const logits = tf.tensor2d(matrix(new Rng(23), 4, 50, 4));
    for (const [, divergence] of DIVERGENCES) {
      for (const value of fullDistill(logits, logits, { ...divergence, temperature: 2 }).dataSync()) {
        expect(Math.abs(value)).toBeLessThan(1e-6);
      }
    }
  });

  it('crops both vocabularies to the shared range when their sizes differ', () => {
    const rng = new Rng(24);
    const [student, teacher] = [matrix(rng, 3, 12, 2), matrix(rng, 3, 9, 2)];
    const options: DivergenceOptions = { divergence: 'reverse_kl', beta: 0.5, temperature: 1.5 };
    const expected = student.map((z, i) => fullRow64(z, teacher[i], options));
    const wider = fullDistill(tf.tensor2d(student), tf.tensor2d(teacher), options).dataSync();
    expectClose(wider, expected, 1e-6, 1e-5, 'student wider');
    const swapped = fullDistill(tf.tensor2d(teacher), tf.tensor2d(student), options).dataSync();
    expectClose(swapped, teacher.map((z, i) => fullRow64(z, student[i], options)), 1e-6, 1e-5, 'teacher wider');
    const grad = tf.grad((x) => tf.sum(fullDistill(x as tf.Tensor2D, tf.tensor2d(teacher), options)))(tf.tensor2d(student));
    expect(Array.from(tf.slice(grad, [0, 9], [3, 3]).dataSync())).toEqual(new Array(9).fill(0));
  });
});

describe('maskedMean and top1Agreement', () => {
  it('averages over the mask, 0 when it is empty', () => {
    expect(maskedMean(tf.tensor1d([1, 2, 3, 4]), tf.tensor1d([1, 0, 1, 0])).dataSync()[0]).toBe(2);
    expect(maskedMean(tf.tensor1d([1, 2]), tf.tensor1d([0, 0])).dataSync()[0]).toBe(0);
  });

  it('counts masked positions whose student argmax is the teacher top-1', () => {
    const logits = tf.tensor2d([
      [0, 5, 1],
      [3, 0, 1],
      [0, 1, 2],
      [9, 0, 0],
    ]);
    const top1 = tf.tensor1d([1, 2, 2, 1], 'int32'); // agrees, disagrees, agrees, disagrees (masked out)
    expect(top1Agreement(logits, top1, tf.tensor1d([1, 1, 1, 0])).dataSync()[0]).toBeCloseTo(2 / 3, 6);
    expect(top1Agreement(logits, top1, tf.tensor1d([0, 0, 0, 0])).dataSync()[0]).toBe(0);
  });
});

describe('combineLosses', () => {
  const rng = new Rng(31);
  const c = topKCase(32, 1);
  const { ids, logprobs } = topKTensors(c);
  const targets = tf.tensor1d([3, 0, 9, 4, 2], 'int32');
  const mask = tf.tensor1d([1, 1, 0, 1, 1]);
  const options: TopKOptions = { divergence: 'forward_kl', beta: 0.5, temperature: 2, tail: 'bucket' };
  const logits = tf.tensor2d(matrix(rng, 5, 10, 2));
  const ce = (x: tf.Tensor) => crossEntropy(x as tf.Tensor2D, targets, mask);
  const kd = (x: tf.Tensor) => maskedMean(topKDistill(x as tf.Tensor2D, ids, logprobs, options), mask);
  const total = (alpha: number) => (x: tf.Tensor) => combineLosses(ce(x), kd(x), alpha);

  it('is plain cross-entropy, bit for bit, at alpha 0, gradients included', () => {
    expect(total(0)(logits).dataSync()[0]).toBe(ce(logits).dataSync()[0]);
    expect(Array.from(tf.grad(total(0))(logits).dataSync())).toEqual(Array.from(tf.grad(ce)(logits).dataSync()));
  });

  it('is (1 - alpha) CE + alpha KD in between', () => {
    const alpha = 0.25;
    const expected = 0.75 * ce(logits).dataSync()[0] + 0.25 * kd(logits).dataSync()[0];
    expect(total(alpha)(logits).dataSync()[0]).toBeCloseTo(expected, 6);
    const [gCe, gKd] = [tf.grad(ce)(logits).dataSync(), tf.grad(kd)(logits).dataSync()];
    const expectedGrad = Array.from(gCe, (g, i) => 0.75 * g + 0.25 * gKd[i]);
    expectClose(tf.grad(total(alpha))(logits).dataSync(), expectedGrad, 1e-7, 1e-5, 'gradient');
  });

  it('rejects alpha outside [0, 1]', () => {
    expect(() => combineLosses(ce(logits), kd(logits), 1.5)).toThrow(/alpha/);
  });
});

describe('tensor bookkeeping', () => {
  it('leaves no tensor behind across repeated loss and gradient computations', () => {
    const c = topKCase(41, 1);
    const { ids, logprobs } = topKTensors(c);
    const logits = tf.variable(tf.tensor2d(c.student));
    const teacher = tf.tensor2d(matrix(new Rng(42), 5, 10, 1));
    const mask = tf.tensor1d([1, 1, 0, 1, 1]);
    const bucket: TopKOptions = { divergence: 'jsd', beta: 0.5, temperature: 2, tail: 'bucket' };
    const renormalize: TopKOptions = { divergence: 'reverse_kl', beta: 0, temperature: 1, tail: 'renormalize' };
    const losses = [
      () => maskedMean(topKDistill(logits, ids, logprobs, bucket), mask),
      () => maskedMean(topKDistill(logits, ids, logprobs, renormalize), mask),
      () => maskedMean(fullDistill(logits, teacher, { divergence: 'forward_kl', beta: 0, temperature: 1 }), mask),
    ];
    const before = tf.memory().numTensors;
    for (let step = 0; step < 3; step++) {
      for (const loss of losses) {
        const { value, grads } = tf.variableGrads(loss);
        tf.dispose([value, ...Object.values(grads)]);
        tf.tidy(() => {
          tf.variableGrads(() => combineLosses(loss(), tf.sum(logits), 0.5));
        });
      }
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
