import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { Batch } from '../../trainers/batches.ts';
import { initBackend } from '../../src/backend/index.ts';
import { Rng } from '../../src/util/rng.ts';
import { nextTokenLoss } from '../../trainers/losses/next-token.ts';
import { DivergenceError, fit, type FitOptions } from '../../trainers/loop.ts';
import { AdamW } from '../../trainers/optimizer/adamw.ts';
import { tinyModel } from '../helpers/tiny-model.ts';

await initBackend('wasm');

function randomBatch(rng: Rng, batchSize: number, seqLen: number, vocab: number): Batch {
  const size = batchSize * seqLen;
  const mask = Float32Array.from({ length: size }, () => (rng.next() < 0.8 ? 1 : 0));
  return {
    inputs: Int32Array.from({ length: size }, () => rng.int(vocab)),
    targets: Int32Array.from({ length: size }, () => rng.int(vocab)),
    mask,
    batchSize,
    seqLen,
    tokens: mask.reduce((a, b) => a + b, 0),
  };
}

function fixedBatches(batches: Batch[]) {
  let i = 0;
  return { nextBatch: () => batches[i++ % batches.length] };
}

const options = (overrides: Partial<FitOptions> = {}): FitOptions => ({
  startStep: 0,
  maxSteps: 4,
  gradAccum: 1,
  clipGradNorm: 1,
  schedule: { lr: 1e-2, minLrRatio: 0.1, warmupSteps: 1, maxSteps: 4, schedule: 'cosine' },
  ...overrides,
});

async function train(backend: 'cpu' | 'wasm', steps: number): Promise<{ losses: number[]; params: Map<string, Float32Array> }> {
  await initBackend(backend);
  const model = tinyModel();
  const optimizer = new AdamW(model.params, { lr: 1e-2 });
  const rng = new Rng(5);
  const batches = fixedBatches([randomBatch(rng, 2, 6, model.config.vocabSize), randomBatch(rng, 2, 6, model.config.vocabSize)]);
  const losses: number[] = [];
  await fit(model.params, optimizer, batches, (b) => nextTokenLoss(model, b), options({ maxSteps: steps }), {
    afterStep: (m) => void losses.push(m.loss),
  });
  const params = new Map([...model.params].map(([name, p]) => [name, (p.dataSync() as Float32Array).slice()]));
  optimizer.dispose();
  model.dispose();
  return { losses, params };
}

describe('fit', () => {
  it('keeps the number of live tensors constant from step to step', async () => {
    const model = tinyModel();
    const optimizer = new AdamW(model.params, { lr: 1e-2 });
    const rng = new Rng(1);
    const counts: number[] = [];
    const batches = { nextBatch: () => randomBatch(rng, 2, 5, model.config.vocabSize) };
    await fit(model.params, optimizer, batches, (b) => nextTokenLoss(model, b), options({ maxSteps: 6, gradAccum: 2 }), {
      afterStep: () => void counts.push(tf.memory().numTensors),
    });
    expect(new Set(counts).size).toBe(1);
    optimizer.dispose();
    model.dispose();
  });

  it('gives the same losses and weights on the wasm and cpu backends', async () => {
    const wasm = await train('wasm', 3);
    const cpu = await train('cpu', 3);
    wasm.losses.forEach((loss, i) => expect(loss).toBeCloseTo(cpu.losses[i], 5));
    for (const [name, values] of cpu.params) {
      const other = wasm.params.get(name)!;
      const diff = values.reduce((max, v, i) => Math.max(max, Math.abs(v - other[i])), 0);
      expect(diff, name).toBeLessThan(1e-5);
    }
    await initBackend('wasm');
  });

  it('averages micro-batches so that accumulation equals one large batch', async () => {
    const rng = new Rng(2);
    const vocab = tinyModel().config.vocabSize;
    const halves = [randomBatch(rng, 2, 6, vocab), randomBatch(rng, 2, 6, vocab)].map((b) => ({ ...b, mask: b.mask.fill(1), tokens: 12 }));
    const whole: Batch = {
      inputs: Int32Array.from([...halves[0].inputs, ...halves[1].inputs]),
      targets: Int32Array.from([...halves[0].targets, ...halves[1].targets]),
      mask: new Float32Array(24).fill(1),
      batchSize: 4,
      seqLen: 6,
      tokens: 24,
    };
    const runWith = async (batches: Batch[], gradAccum: number) => {
      const model = tinyModel();
      const optimizer = new AdamW(model.params, { lr: 1e-2 });
      await fit(model.params, optimizer, fixedBatches(batches), (b) => nextTokenLoss(model, b), options({ maxSteps: 1, gradAccum }));
      const weights = (model.params.get('model.layers.0.mlp.up_proj.weight')!.dataSync() as Float32Array).slice();
      optimizer.dispose();
      model.dispose();
      return weights;
    };
    const accumulated = await runWith(halves, 2);
    const single = await runWith([whole], 1);
    accumulated.forEach((v, i) => expect(v).toBeCloseTo(single[i], 6));
  });

  it('stops with DivergenceError before applying an update whose loss is not finite', async () => {
    const model = tinyModel();
    const optimizer = new AdamW(model.params, { lr: 1e-2 });
    const rng = new Rng(3);
    const batches = { nextBatch: () => randomBatch(rng, 1, 4, model.config.vocabSize) };
    let calls = 0;
    const loss = (b: Batch) => (++calls === 3 ? tf.mul(nextTokenLoss(model, b), Number.NaN) as tf.Scalar : nextTokenLoss(model, b));
    const before = new Map<string, Float32Array>();
    const completed: number[] = [];
    const attempt = fit(model.params, optimizer, batches, loss, options({ maxSteps: 5, clipGradNorm: null }), {
      afterStep: (m) => {
        completed.push(m.step);
        for (const [name, p] of model.params) before.set(name, (p.dataSync() as Float32Array).slice());
      },
    });
    await expect(attempt).rejects.toThrow(DivergenceError);
    await expect(attempt).rejects.toThrow('training diverged at step 3: the loss is not finite');
    expect(completed).toEqual([1, 2]);
    expect(optimizer.steps).toBe(2);
    for (const [name, p] of model.params) expect(p.dataSync(), name).toEqual(before.get(name));
    optimizer.dispose();
    model.dispose();
  });
});
