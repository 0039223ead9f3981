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
import { openHfWeights } from '../../src/formats/hf-model-dir.ts';
import type { CausalLM } from '../../src/model/causal-lm.ts';
import { loadModel } from '../../src/model/load.ts';
import { LoraAdapter } from '../../src/model/lora.ts';
import { resolveLoraConfig } from '../../src/model/lora-config.ts';
import { scoreTokens } from '../../src/model/score.ts';
import { nextTokenLoss } from '../../trainers/losses/next-token.ts';
import { randomizeLoraB } from '../helpers/lora.ts';
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
      const result = adapterGradients(model);
      model.dispose();
      return result;
    };
    const resident = await grads('resident');
    const streamed = await grads('streamed');
    for (const [name, g] of resident) {
      const scale = Math.max(...g.map(Math.abs));
      const diff = Math.max(...streamed.get(name)!.map((v, i) => Math.abs(v - g[i])));
      expect(scale, name).toBeGreaterThan(0);
      expect(diff / scale, name).toBeLessThan(1e-3);
    }
  });
});

/** CE gradients of every adapter matrix on one 1 x 12 batch, B made non-zero so A gets a gradient too. */
function adapterGradients(model: CausalLM): Map<string, Float32Array> {
  for (const p of model.params.values()) p.trainable = false;
  const adapter = LoraAdapter.init(model, resolveLoraConfig({ rank: 4, alpha: 8, targets: 'all-linear' }), 1);
  randomizeLoraB(adapter, 2, 0.05);
  const T = IDS.length;
  const inputs = Int32Array.from(IDS, (id) => id % model.config.vocabSize);
  const batch = { inputs, targets: Int32Array.from([...inputs.slice(1), inputs[0]]), mask: new Float32Array(T).fill(1), batchSize: 1, seqLen: T, tokens: T };
  const { value, grads } = tf.variableGrads(() => nextTokenLoss(model, batch, adapter.wrap(model)), [...adapter.params.values()]);
  const out = new Map([...adapter.params].map(([name, v]) => [name, grads[v.name].dataSync() as Float32Array]));
  tf.dispose([value, ...Object.values(grads)]);
  adapter.dispose();
  return out;
}
