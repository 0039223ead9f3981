/**
 * Published real shapes (random BF16 weights made here, cut to 2 layers with the full embedding): a base
 * streamed from host memory scores as the same base held in the backend, and both as an independent
 * float64 forward; LoRA gets the same gradients either way.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shapeConfig, writeRandomModel, type ModelShape } from '../../src/bench/model-shapes.ts';
import { initBackend } from '../../src/backend/index.ts';
import { openHfWeights } from '../../src/formats/hf-model-dir.ts';
import { loadModel } from '../../src/model/load.ts';
import { scoreTokens } from '../../src/model/score.ts';
import { nextTokenLoss } from '../../trainers/losses/next-token.ts';
import { adapterGradients, expectSameGradients } from '../helpers/lora.ts';
import { referenceLogprobs } from '../helpers/reference-forward.ts';

await initBackend('wasm');

const root = await mkdtemp(join(tmpdir(), 'slm-real-shape-'));
afterAll(() => rm(root, { recursive: true, force: true }));

const IDS = [128000, 791, 4062, 14198, 39935, 35308, 927, 279, 16053, 5679, 13, 578];

describe.each<[ModelShape]>([['llama3.2-1b'], ['qwen2.5-0.5b'], ['gemma3-1b']])('%s cut to 2 layers', (shape) => {
  const config = shapeConfig(shape, 2);
  const dir = join(root, shape);
  const ready = writeRandomModel(dir, config, 11);

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

    const weights = await openHfWeights(dir);
    const reference = await referenceLogprobs(config, async (name) => (await weights.read(name)).data, ids);
    await weights.close();
    streamedScores.forEach((lp, i) => {
      expect(Math.abs(lp - residentScores[i])).toBeLessThan(1e-4);
      expect(Math.abs(lp - reference[i])).toBeLessThan(5e-3);
    });
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
