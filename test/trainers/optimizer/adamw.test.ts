import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, type AdamWState } from '../../../trainers/optimizer/adamw.ts';
import { Rng } from '../../../src/util/rng.ts';

interface ReferenceParam {
  name: string;
  shape: number[];
  decays: boolean;
  init: number[];
  grads: number[][];
  after: number[][];
  exp_avg: number[];
  exp_avg_sq: number[];
}

interface Reference {
  betas: [number, number];
  eps: number;
  weight_decay: number;
  lrs: number[];
  params: ReferenceParam[];
}

const reference: Reference = JSON.parse(
  readFileSync(new URL('../../fixtures/adamw_reference.json', import.meta.url), 'utf8'),
);

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function makeParams(specs: ReferenceParam[]): Map<string, tf.Variable> {
  return new Map(specs.map((p) => [p.name, tf.variable(tf.tensor(p.init, p.shape))]));
}

function gradsAt(specs: ReferenceParam[], step: number): Map<string, tf.Tensor> {
  return new Map(specs.map((p) => [p.name, tf.tensor(p.grads[step], p.shape)]));
}

function disposeAll(tensors: Iterable<tf.Tensor>): void {
  for (const t of tensors) t.dispose();
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThan(tolerance);
}

/** The update written out in float64, one element at a time, independent of tfjs. */
function plainAdamW(
  p: number[],
  grads: number[][],
  lrs: number[],
  { beta1, beta2, eps, wd }: { beta1: number; beta2: number; eps: number; wd: number },
): number[] {
  const param = [...p];
  const m = param.map(() => 0);
  const v = param.map(() => 0);
  grads.forEach((g, s) => {
    const t = s + 1;
    for (let i = 0; i < param.length; i++) {
      param[i] -= lrs[s] * wd * param[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      const mHat = m[i] / (1 - beta1 ** t);
      const vHat = v[i] / (1 - beta2 ** t);
      param[i] -= (lrs[s] * mHat) / (Math.sqrt(vHat) + eps);
    }
  });
  return param;
}

function makeOptimizer(params: Map<string, tf.Variable>): AdamW {
  const decaying = new Set(reference.params.filter((p) => p.decays).map((p) => p.name));
  return new AdamW(params, {
    lr: 1e-3,
    betas: reference.betas,
    eps: reference.eps,
    weightDecay: reference.weight_decay,
    decay: (name) => decaying.has(name),
  });
}

describe('AdamW', () => {
  it('matches torch.optim.AdamW step by step, with and without weight decay', async () => {
    const params = makeParams(reference.params);
    const optimizer = makeOptimizer(params);
    reference.lrs.forEach((lr, step) => {
      const grads = gradsAt(reference.params, step);
      optimizer.step(grads, lr);
      disposeAll(grads.values());
      for (const spec of reference.params) {
        expectClose(params.get(spec.name)!.dataSync(), spec.after[step], 1e-6);
      }
    });
    const state = await optimizer.state();
    expect(state.step).toBe(reference.lrs.length);
    for (const spec of reference.params) {
      const moments = state.moments.get(spec.name)!;
      expectClose(moments.m, spec.exp_avg, 1e-7);
      // v holds squared gradients: compare relative to its own size (one parameter's grads are ~1e-6).
      const scale = Math.max(...spec.exp_avg_sq.map(Math.abs));
      expectClose(moments.v.map((x) => x / scale), spec.exp_avg_sq.map((x) => x / scale), 1e-6);
    }
    optimizer.dispose();
    disposeAll(params.values());
  });

  it('matches the update written out in plain float64 arithmetic', () => {
    const rng = new Rng(7);
    const shapes = [[5, 4], [6]];
    const steps = 8;
    const lrs = Array.from({ length: steps }, (_, s) => 0.05 * (1 + Math.cos(s)));
    const init = shapes.map((shape) => Array.from({ length: tf.util.sizeFromShape(shape) }, () => rng.normal()));
    const grads = shapes.map((shape) =>
      Array.from({ length: steps }, () => Array.from({ length: tf.util.sizeFromShape(shape) }, () => rng.normal())),
    );
    const params = new Map(shapes.map((shape, i) => [`p${i}`, tf.variable(tf.tensor(init[i], shape))]));
    const hyper = { beta1: 0.8, beta2: 0.99, eps: 1e-6, wd: 0.2 };
    // Default predicate: the matrix decays, the vector does not.
    const betas: [number, number] = [hyper.beta1, hyper.beta2];
    const optimizer = new AdamW(params, { lr: 0, betas, eps: hyper.eps, weightDecay: hyper.wd });
    for (let s = 0; s < steps; s++) {
      const stepGrads = new Map(shapes.map((shape, i) => [`p${i}`, tf.tensor(grads[i][s], shape)]));
      optimizer.step(stepGrads, lrs[s]);
      disposeAll(stepGrads.values());
    }
    expectClose(params.get('p0')!.dataSync(), plainAdamW(init[0], grads[0], lrs, hyper), 2e-6);
    expectClose(params.get('p1')!.dataSync(), plainAdamW(init[1], grads[1], lrs, { ...hyper, wd: 0 }), 2e-6);
    optimizer.dispose();
    disposeAll(params.values());
  });

  it('keeps the tensor count constant across steps', () => {
    const params = makeParams(reference.params);
    const optimizer = makeOptimizer(params);
    const grads = gradsAt(reference.params, 0);
    optimizer.step(grads, 1e-3);
    const before = tf.memory().numTensors;
    for (let s = 0; s < 20; s++) optimizer.step(grads, 1e-3);
    expect(tf.memory().numTensors).toBe(before);
    disposeAll(grads.values());
    optimizer.dispose();
    disposeAll(params.values());
    expect(tf.memory().numTensors).toBe(before - 2 * 2 * reference.params.length);
  });

  it('resumes from state() into a fresh optimizer exactly as an uninterrupted run', async () => {
    const run = async (interruptAt: number | null): Promise<Float32Array[]> => {
      let params = makeParams(reference.params);
      let optimizer = makeOptimizer(params);
      for (const [step, lr] of reference.lrs.entries()) {
        if (step === interruptAt) {
          const values = new Map([...params].map(([name, p]) => [name, p.dataSync().slice()]));
          const state: AdamWState = await optimizer.state();
          optimizer.dispose();
          disposeAll(params.values());
          params = new Map(
            reference.params.map((spec) => [spec.name, tf.variable(tf.tensor(values.get(spec.name)!, spec.shape))]),
          );
          optimizer = makeOptimizer(params);
          optimizer.loadState(state);
        }
        const grads = gradsAt(reference.params, step);
        optimizer.step(grads, lr);
        disposeAll(grads.values());
      }
      const result = [...params.values()].map((p) => p.dataSync().slice() as Float32Array);
      optimizer.dispose();
      disposeAll(params.values());
      return result;
    };
    expect(await run(2)).toEqual(await run(null));
  });

  it('gives state only to trainable parameters and names what is wrong with a gradient map', async () => {
    const weight = tf.variable(tf.ones([2, 2]));
    const frozen = tf.variable(tf.ones([2, 2]), false);
    const optimizer = new AdamW(new Map([['w', weight], ['frozen', frozen]]), { lr: 0.1 });
    expect(optimizer.paramNames()).toEqual(['w']);
    expect([...(await optimizer.state()).moments.keys()]).toEqual(['w']);
    const ok = tf.ones([2, 2]);
    const wrongShape = tf.ones([4]);
    expect(() => optimizer.step(new Map())).toThrow(/no gradient for trainable parameter 'w'/);
    expect(() => optimizer.step(new Map([['w', ok], ['frozen', ok]]))).toThrow(/'frozen', which is not a trainable/);
    expect(() => optimizer.step(new Map([['w', wrongShape]]))).toThrow(/'w' has shape \[4\]; expected \[2,2\]/);
    expect(() => optimizer.loadState({ step: 1, moments: new Map() })).toThrow(/lacks moments for parameter 'w'/);
    expect(() => new AdamW(new Map(), { lr: -1 })).toThrow(/lr must be a finite number >= 0/);
    expect(optimizer.steps).toBe(0);
    disposeAll([ok, wrongShape, weight, frozen]);
    optimizer.dispose();
  });
});
