import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { KVCache } from '../../src/model/kv-cache.ts';
import { Rng } from '../../src/util/rng.ts';
import { initBackend } from '../../src/backend/index.ts';
import { randomIds, tinyModel } from '../helpers/tiny-model.ts';

await initBackend('wasm');

describe('KV-cache decoding', () => {
  it('gives the logits of the full causal forward pass at every position', () => {
    const model = tinyModel({ ropeScaling: { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8 } });
    const [B, T, prefill] = [2, 9, 4];
    const ids = randomIds(new Rng(3), B, T, model.config.vocabSize);
    const full = model.forward(ids).arraySync(); // [B, T, V]

    const cache = new KVCache(model.config.numLayers);
    const pieces = [tf.slice(ids, [0, 0], [B, prefill]) as tf.Tensor2D];
    for (let t = prefill; t < T; t++) pieces.push(tf.slice(ids, [0, t], [B, 1]) as tf.Tensor2D);
    const incremental: number[][][] = [[], []];
    for (const piece of pieces) {
      const logits = model.forward(piece, cache).arraySync();
      for (let b = 0; b < B; b++) incremental[b].push(...logits[b]);
    }
    expect(cache.length).toBe(T);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        for (let v = 0; v < model.config.vocabSize; v++) expect(incremental[b][t][v]).toBeCloseTo(full[b][t][v], 4);
      }
    }
    cache.dispose();
  });

  it('keeps only its own tensors alive between steps', () => {
    const model = tinyModel();
    const cache = new KVCache(model.config.numLayers);
    model.forward(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32'), cache).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) tf.tidy(() => void model.forward(tf.tensor2d([[4]], [1, 1], 'int32'), cache));
    expect(tf.memory().numTensors).toBe(before);
    cache.dispose();
    expect(tf.memory().numTensors).toBe(before - 2 * model.config.numLayers);
  });
});
