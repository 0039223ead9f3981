import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { exportGgufLora } from '../../src/export/gguf-lora.ts';
import { exportGguf } from '../../src/model-files/gguf-model.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { LoraAdapter } from '../../src/model/lora.ts';
import { resolveLoraConfig } from '../../src/model/lora-config.ts';
import { BYTE_LEVEL_TOKENIZER_CONFIG, createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { Rng } from '../../src/util/rng.ts';
import { disposeLlamaCpp, llamaCppProbabilities } from '../helpers/llama-cpp.ts';

await initBackend('cpu');
afterAll(disposeLlamaCpp);

const tokenizer = createByteLevelTokenizer();
const ids = [256, 84, 104, 101, 32, 99, 97, 116, 32, 115, 97, 116];

/** A base and a trained-looking adapter (B random, so the update is not zero). */
function baseAndAdapter(rslora: boolean) {
  const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2, tieWordEmbeddings: true, maxPositionEmbeddings: 128 });
  const model = CausalLM.init(config, { seed: 3, std: 0.1 });
  const lora = resolveLoraConfig({ rank: 4, alpha: 8, targets: 'all-linear', rslora });
  const adapter = LoraAdapter.init(model, lora, 1);
  const rng = new Rng(2);
  for (const [name, p] of adapter.params) {
    if (name.includes('lora_B')) p.assign(tf.tensor(Array.from({ length: p.size }, () => rng.normal() * 0.1), p.shape));
  }
  return { model, lora, adapter };
}

function softmaxRows(model: CausalLM): number[][] {
  return tf.tidy(() => (tf.softmax(model.forward(tf.tensor2d(ids, [1, ids.length], 'int32'))).arraySync() as number[][][])[0]);
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  let max = 0;
  a.forEach((row, i) => row.forEach((v, j) => (max = Math.max(max, Number.isNaN(v - b[i][j]) ? Number.NaN : Math.abs(v - b[i][j])))));
  return max;
}

describe('a GGUF LoRA adapter applied by real llama.cpp to the exported base', () => {
  it.each([false, true])('matches our merged model (rslora %s) within 1e-5', async (rslora) => {
    const dir = mkdtempSync(join(tmpdir(), 'lora-gguf-'));
    const { model, lora, adapter } = baseAndAdapter(rslora);
    const basePath = join(dir, 'base.gguf');
    await exportGguf(model, { json: tokenizer.toJSON(), config: BYTE_LEVEL_TOKENIZER_CONFIG }, basePath, { type: 'F32' });
    const adapterPath = join(dir, 'adapter.gguf');
    await exportGgufLora(adapterPath, model.config, lora, await adapter.peftTensors());

    const baseOnly = await llamaCppProbabilities(basePath, ids, tokenizer.vocabSize);
    const withAdapter = await llamaCppProbabilities(basePath, ids, tokenizer.vocabSize, adapterPath);
    expect(maxAbsDiff(baseOnly, softmaxRows(model))).toBeLessThan(1e-5);
    await adapter.merge(model);
    const merged = softmaxRows(model);
    expect(maxAbsDiff(withAdapter, baseOnly)).toBeGreaterThan(1e-3); // the adapter changes something
    expect(maxAbsDiff(withAdapter, merged)).toBeLessThan(1e-5);
    model.dispose();
  });
});
