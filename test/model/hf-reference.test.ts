import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KVCache } from '../../src/model/kv-cache.ts';
import { loadModelDir } from '../../src/model-files/load.ts';
import { initBackend } from '../../src/backend/index.ts';

await initBackend('wasm');

const FIXTURES = join(import.meta.dirname, '../fixtures/hf');

interface Expected {
  input_ids: number[];
  logits: number[][];
  logits_prefix: number[][];
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  let max = 0;
  a.forEach((row, i) => row.forEach((v, j) => (max = Math.max(max, Math.abs(v - b[i][j])))));
  return max;
}

/**
 * Logits of models loaded from Hugging Face directories against test/fixtures/make_hf_reference.py, a
 * separate PyTorch implementation of the same architectures (float32 throughout).
 */
describe.each(['tiny-llama', 'tiny-qwen2', 'tiny-qwen3'])('%s from its HF directory', (name) => {
  const expected = JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8')) as Expected;
  const ids = expected.input_ids;

  it('matches the PyTorch reference logits at every position', async () => {
    const { model } = await loadModelDir(join(FIXTURES, name));
    const logits = model.forward(tf.tensor2d(ids, [1, ids.length], 'int32')).arraySync()[0];
    expect(maxAbsDiff(logits, expected.logits)).toBeLessThan(1e-4);
    model.dispose();
  });

  it('matches them when decoding one token at a time with the KV cache', async () => {
    const { model } = await loadModelDir(join(FIXTURES, name));
    const cache = new KVCache(model.config.numLayers);
    const rows = ids.map((id) => model.forward(tf.tensor2d([id], [1, 1], 'int32'), cache).arraySync()[0][0]);
    expect(maxAbsDiff(rows, expected.logits)).toBeLessThan(1e-4);
    expect(maxAbsDiff(rows.slice(0, expected.logits_prefix.length), expected.logits_prefix)).toBeLessThan(1e-4);
    cache.dispose();
    model.dispose();
  });
});
