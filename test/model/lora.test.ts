import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { LoraAdapter, peftName } from '../../src/model/lora.ts';
import { resolveLoraConfig } from '../../src/model/lora-config.ts';
import { Rng } from '../../src/util/rng.ts';
import { crossEntropy } from '../../trainers/losses/cross-entropy.ts';
import { randomIds, tinyModel } from '../helpers/tiny-model.ts';

await initBackend('wasm');

const config = resolveLoraConfig({ rank: 4, alpha: 8, targets: 'all-linear' });

/** An adapter whose B is random too, so it changes the model. */
function trainedAdapter(model: ReturnType<typeof tinyModel>, seed = 1): LoraAdapter {
  const adapter = LoraAdapter.init(model, config, seed);
  const rng = new Rng(seed);
  for (const [name, p] of adapter.params) {
    if (name.includes('lora_B')) p.assign(tf.tensor(Array.from({ length: p.size }, () => rng.normal() * 0.1), p.shape));
  }
  return adapter;
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

describe('LoRA', () => {
  const ids = randomIds(new Rng(2), 2, 7, 23);

  it('starts as the base model (B = 0) and A is uniform in +-1/sqrt(in)', () => {
    const model = tinyModel();
    const adapter = LoraAdapter.init(model, config, 0);
    expect(maxDiff(model.forward(ids, undefined, adapter.wrap(model)), model.forward(ids))).toBe(0);
    const a = adapter.params.get(peftName('model.layers.0.mlp.down_proj', 'A'))!; // [in = 24, r]
    expect(a.shape).toEqual([24, 4]);
    const values = a.dataSync();
    expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(24));
    expect(adapter.scale).toBe(2);
    expect(LoraAdapter.init(model, { ...config, rslora: true }, 0).scale).toBe(4);
  });

  it('merged weights give the logits of the unmerged adapter, and unmerge restores the base', async () => {
    const model = tinyModel();
    const base = model.forward(ids);
    const adapter = trainedAdapter(model);
    const adapted = model.forward(ids, undefined, adapter.wrap(model));
    expect(maxDiff(adapted, base)).toBeGreaterThan(1e-2);
    await adapter.merge(model);
    expect(maxDiff(model.forward(ids), adapted)).toBeLessThan(1e-5);
    await adapter.unmerge(model);
    expect(maxDiff(model.forward(ids), base)).toBeLessThan(1e-5);
  });

  it('refuses a merge that would make weights non-finite, changing nothing', async () => {
    const model = tinyModel();
    const adapter = trainedAdapter(model);
    const before = model.forward(ids);
    const b = adapter.params.get(peftName('model.layers.1.self_attn.o_proj', 'B'))!;
    b.assign(tf.fill(b.shape, Number.POSITIVE_INFINITY));
    await expect(adapter.merge(model)).rejects.toThrow('non-finite');
    expect(maxDiff(model.forward(ids), before)).toBe(0);
  });

  it('only the adapter gets gradients, and they match finite differences', () => {
    const model = tinyModel();
    const adapter = trainedAdapter(model);
    const targets = tf.reshape(randomIds(new Rng(4), 2, 7, 23), [14]) as tf.Tensor1D;
    const mask = tf.ones([14]) as tf.Tensor1D;
    const loss = () => crossEntropy(tf.reshape(model.forward(ids, undefined, adapter.wrap(model)), [14, 23]) as tf.Tensor2D, targets, mask);
    const { grads } = tf.variableGrads(loss, [...adapter.params.values()]);
    expect(Object.keys(grads)).toHaveLength(adapter.params.size);
    const rng = new Rng(5);
    for (const name of [peftName('model.layers.0.self_attn.q_proj', 'A'), peftName('model.layers.1.mlp.down_proj', 'B')]) {
      const p = adapter.params.get(name)!;
      const base = (p.dataSync() as Float32Array).slice();
      const i = rng.int(base.length);
      const at = (delta: number) => {
        const values = base.slice();
        values[i] += delta;
        p.assign(tf.tensor(values, p.shape));
        return tf.tidy(() => loss().dataSync()[0]);
      };
      const numeric = (at(1e-2) - at(-1e-2)) / 2e-2;
      p.assign(tf.tensor(base, p.shape));
      expect(Math.abs(grads[p.name].dataSync()[i] - numeric)).toBeLessThan(2e-3 + 3e-2 * Math.abs(numeric));
    }
  });

  it('round-trips through PEFT tensor names and shapes', async () => {
    const model = tinyModel();
    const adapter = trainedAdapter(model);
    const tensors = await adapter.peftTensors();
    const qA = tensors.find((t) => t.name === 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!;
    const qB = tensors.find((t) => t.name === 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight')!;
    expect(qA.shape).toEqual([4, 16]); // [r, in]
    expect(qB.shape).toEqual([16, 4]); // [out, r]
    const copy = LoraAdapter.fromPeftTensors(model, config, new Map(tensors.map((t) => [t.name, t])));
    expect(maxDiff(model.forward(ids, undefined, copy.wrap(model)), model.forward(ids, undefined, adapter.wrap(model)))).toBe(0);
  });

  it('rejects bad config values, naming the argument', () => {
    expect(() => resolveLoraConfig({ rank: 0, alpha: 8 })).toThrow('lora: rank must be a positive integer, got 0');
    expect(() => resolveLoraConfig({ rank: 4, alpha: 8, dropout: 1 })).toThrow('lora: dropout must be in [0, 1)');
    expect(() => resolveLoraConfig({ rank: 4, alpha: 8, targets: ['qkv'] })).toThrow('lora: unknown target "qkv"');
    expect(resolveLoraConfig({ rank: 4, alpha: 8, targets: ['q', 'down_proj'] }).targets).toEqual(['q_proj', 'down_proj']);
  });
});
