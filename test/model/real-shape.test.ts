/**
 * Published real shapes (random BF16 weights made here, cut to 2 layers with the full embedding): a base
 * streamed from host memory scores as the same base held in the backend, and both as an independent
 * float64 forward; LoRA gets the same gradients either way.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { shapeConfig, writeRandomModel, type ModelShape } from '../../src/bench/model-shapes.ts';
import { initBackend } from '../../src/backend/index.ts';
import { openHfWeights } from '../../src/model-files/hf-model-dir.ts';
import { loadModel } from '../../src/model-files/load.ts';
import { scoreTokens } from '../../src/model/score.ts';
import { nextTokenLoss } from '../../trainers/losses/next-token.ts';
import { adapterGradients, expectSameGradients } from '../helpers/lora.ts';
import { referenceLogprobs } from '../helpers/reference-forward.ts';

await initBackend('wasm');

function logSoftmaxAt(logits: ArrayLike<number>, id: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += Math.exp(logits[i] - max);
  return logits[id] - max - Math.log(total);
}

const root = await mkdtemp(join(tmpdir(), 'slm-real-shape-'));
afterAll(() => rm(root, { recursive: true, force: true }));

const IDS = [128000, 791, 4062, 14198, 39935, 35308, 927, 279, 16053, 5679, 13, 578];

describe.each<[ModelShape]>([['llama3.2-1b'], ['qwen2.5-0.5b'], ['gemma3-1b']])('%s cut to 2 layers', (shape) => {
  const config = shapeConfig(shape, 2);
  const dir = join(root, shape);
  const ready = writeRandomModel(dir, config, 11);
  let referenceRun: Promise<number[]> | undefined;
  /** The float64 forward pass's log-probabilities of IDS, computed once for the tests below. */
  const reference = (ids: number[]) =>
    (referenceRun ??= (async () => {
      const weights = await openHfWeights(dir);
      try {
        return await referenceLogprobs(config, async (name) => (await weights.read(name)).data, ids);
      } finally {
        await weights.close();
      }
    })());

  it('keeps the published embedding and scores streamed as resident (1e-4 nats) and as a float64 forward (5e-3)', async () => {
    await ready;
    const ids = IDS.map((id) => id % config.vocabSize);
    const streamed = (await loadModel(dir, { weights: 'streamed', pinBytes: 0 })).model;
    expect(streamed.frozen?.compact('model.embed_tokens.weight').shape).toEqual([config.vocabSize, config.hiddenSize]);
    const streamedScores = (await scoreTokens(streamed, ids)).logprobs.slice(1) as number[];
    streamed.dispose();
    const resident = (await loadModel(dir, { weights: 'resident' })).model;
    const residentScores = (await scoreTokens(resident, ids)).logprobs.slice(1) as number[];
    resident.dispose();

    const expected = await reference(ids);
    streamedScores.forEach((lp, i) => {
      expect(Math.abs(lp - residentScores[i])).toBeLessThan(1e-4);
      expect(Math.abs(lp - expected[i])).toBeLessThan(5e-3);
    });
  });

  it('decodes a token at a time through the KV cache, streamed, to the float64 forward pass (5e-3 nats)', async () => {
    await ready;
    const ids = IDS.map((id) => id % config.vocabSize);
    const { model } = await loadModel(dir, { weights: 'streamed', pinBytes: 0 });
    const cache = model.newCache(ids.length);
    const prefill = 6;
    const decoded: number[] = []; // log-probability of ids[t + 1] after ids[0..t]
    for (let start = 0; start < ids.length - 1; start = cache.length) {
      const chunk = ids.slice(start, start === 0 ? prefill : start + 1);
      const logits = model.forward(tf.tensor2d([chunk], [1, chunk.length], 'int32'), cache); // wasm: the fused decoding path after the prefill
      const last = (await logits.data()).subarray((chunk.length - 1) * config.vocabSize);
      logits.dispose();
      if (start === 0) decoded.push(...new Array<number>(prefill - 1).fill(NaN)); // the prefill's earlier positions: scored below
      decoded.push(logSoftmaxAt(last, ids[start + chunk.length]));
    }
    cache.dispose();
    model.dispose();
    const expected = await reference(ids);
    decoded.forEach((lp, i) => {
      if (!Number.isNaN(lp)) expect(Math.abs(lp - expected[i]), `position ${i + 1}`).toBeLessThan(5e-3);
    });
    expect(decoded.filter((lp) => !Number.isNaN(lp))).toHaveLength(ids.length - prefill);
  });

  it('gives LoRA (all-linear) the same gradients streamed as resident', async () => {
    await ready;
    const grads = async (weights: 'streamed' | 'resident') => {
      const { model } = await loadModel(dir, { weights, pinBytes: 0 });
      const result = adapterGradients(model, IDS, (batch, project) => nextTokenLoss(model, batch, project));
      model.dispose();
      return result;
    };
    expectSameGradients(await grads('streamed'), await grads('resident'), 1e-3);
  });
});
