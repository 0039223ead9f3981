import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import type { Batch } from '../../trainers/batches.ts';
import type { CausalLM } from '../../src/model/causal-lm.ts';
import type { Projection } from '../../src/model/layers.ts';
import { LoraAdapter } from '../../src/model/lora.ts';
import { resolveLoraConfig } from '../../src/model/lora-config.ts';
import { Rng } from '../../src/util/rng.ts';

/** Sets every B to normal(0, std) values, so the adapter changes the model and A gets a gradient too. */
export function randomizeLoraB(adapter: LoraAdapter, seed: number, std: number): void {
  const rng = new Rng(seed);
  for (const [name, p] of adapter.params) {
    if (!name.includes('lora_B')) continue;
    const values = tf.tensor(Array.from({ length: p.size }, () => rng.normal() * std), p.shape);
    p.assign(values);
    values.dispose();
  }
}

/**
 * Gradients of every adapter matrix (all-linear, rank 4, B made non-zero so A gets a gradient too) of a
 * loss on the 1 x T batch of `ids` predicting each next id, by name; the base stays frozen.
 */
export function adapterGradients(model: CausalLM, ids: readonly number[], loss: (batch: Batch, project: Projection) => tf.Scalar): Map<string, Float32Array> {
  for (const p of model.params.values()) p.trainable = false;
  const adapter = LoraAdapter.init(model, resolveLoraConfig({ rank: 4, alpha: 8, targets: 'all-linear' }), 1);
  randomizeLoraB(adapter, 2, 0.05);
  const T = ids.length;
  const inputs = Int32Array.from(ids, (id) => id % model.config.vocabSize);
  const batch = { inputs, targets: Int32Array.from([...inputs.slice(1), inputs[0]]), mask: new Float32Array(T).fill(1), batchSize: 1, seqLen: T, tokens: T };
  const { value, grads } = tf.variableGrads(() => loss(batch, adapter.wrap(model)), [...adapter.params.values()]);
  const out = new Map([...adapter.params].map(([name, v]) => [name, grads[v.name].dataSync() as Float32Array]));
  tf.dispose([value, ...Object.values(grads)]);
  adapter.dispose();
  return out;
}

/** Each gradient of `actual` within `tolerance` of `expected`'s, relative to its largest entry, which must not be 0. */
export function expectSameGradients(actual: Map<string, Float32Array>, expected: Map<string, Float32Array>, tolerance: number): void {
  for (const [name, g] of expected) {
    const scale = Math.max(...g.map(Math.abs));
    const diff = Math.max(...actual.get(name)!.map((v, i) => Math.abs(v - g[i])));
    expect(scale, name).toBeGreaterThan(0);
    expect(diff / scale, name).toBeLessThan(tolerance);
  }
}
