/**
 * Gemma 1/2/3 loaded from Hugging Face folders against test/fixtures/make_gemma_reference.py, a float64
 * PyTorch forward written from transformers' Gemma modeling code: every position's log-probabilities, full
 * forward and token-by-token decoding with the (windowed) KV cache.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig, type ModelConfig } from '../../src/model/config.ts';
import { loadModel, loadModelDir } from '../../src/model-files/load.ts';
import { exportGguf } from '../../src/model-files/gguf-model.ts';
import { GgufFile } from '../../src/formats/gguf/reader.ts';
import { GgufWriter } from '../../src/formats/gguf/writer.ts';
import { FIXTURE_TOKENIZER } from '../fixtures/gguf/tokenizers.ts';
import { openHfWeights } from '../../src/model-files/hf-model-dir.ts';
import { referenceLogprobs } from '../helpers/reference-forward.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const FIXTURES = join(import.meta.dirname, '../fixtures/hf');

function expectedOf(name: string): { input_ids: number[]; logits: number[][] } {
  return JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8'));
}

function logSoftmaxRows(rows: number[][]): number[][] {
  return rows.map((row) => {
    const max = Math.max(...row);
    const logZ = max + Math.log(row.reduce((sum, v) => sum + Math.exp(v - max), 0));
    return row.map((v) => v - logZ);
  });
}

/** The largest difference in log-probability (nats) over every position and token. */
function maxLogprobDiff(a: number[][], b: number[][]): number {
  const [la, lb] = [logSoftmaxRows(a), logSoftmaxRows(b)];
  return Math.max(...la.flatMap((row, t) => row.map((v, j) => Math.abs(v - lb[t][j]))));
}

function fullLogits(model: CausalLM, ids: number[]): number[][] {
  return tf.tidy(() => model.forward(tf.tensor2d(ids, [1, ids.length], 'int32')).arraySync()[0]);
}

/** The same weights under another config (a Gemma trait switched off). */
async function withConfig(model: CausalLM, change: Partial<ModelConfig>): Promise<CausalLM> {
  const tensors = new Map(model.hfTensors().map((t) => [t.name, t]));
  return CausalLM.fromHfTensors(resolveModelConfig({ ...model.config, ...change }), async (name) => tensors.get(name));
}

describe.each([
  ['tiny-gemma', 'gemma'],
  ['tiny-gemma2', 'gemma2'],
  ['tiny-gemma3', 'gemma3_text'],
])('%s from its HF folder', (name, modelType) => {
  const expected = expectedOf(name);
  const ids = expected.input_ids;

  it('scores every position as the float64 PyTorch reference (5e-3 nats; logits within 1e-3)', async () => {
    const { model } = await loadModelDir(join(FIXTURES, name));
    expect(model.config.modelType).toBe(modelType);
    const logits = fullLogits(model, ids);
    expect(maxLogprobDiff(logits, expected.logits)).toBeLessThan(5e-3);
    expect(Math.max(...logits.flatMap((row, t) => row.map((v, j) => Math.abs(v - expected.logits[t][j]))))).toBeLessThan(1e-3);
    model.dispose();
  });

  it('is what the float64 TypeScript reference of the real-size tests computes (1e-6 nats)', async () => {
    const { model } = await loadModelDir(join(FIXTURES, name));
    const weights = await openHfWeights(join(FIXTURES, name));
    const reference = await referenceLogprobs(model.config, async (tensor) => (await weights.read(tensor)).data, ids);
    await weights.close();
    const torch = logSoftmaxRows(expected.logits);
    reference.forEach((logprob, i) => expect(Math.abs(logprob - torch[i][ids[i + 1]])).toBeLessThan(1e-6));
    model.dispose();
  });

  it('decodes one token at a time with a KV cache (windowed in the local layers) to the same logits', async () => {
    const { model } = await loadModelDir(join(FIXTURES, name));
    const cache = model.newCache();
    const rows = ids.map((id) => tf.tidy(() => model.forward(tf.tensor2d([id], [1, 1], 'int32'), cache).arraySync()[0][0]));
    expect(maxLogprobDiff(rows, expected.logits)).toBeLessThan(5e-3);
    for (let layer = 0; layer < model.config.numLayers; layer++) {
      const window = model.config.layerTypes[layer] === 'sliding' ? model.config.slidingWindow! : ids.length;
      expect(cache.length - cache.dropped(layer)).toBeLessThanOrEqual(window);
    }
    cache.dispose();
    model.dispose();
  });

  it('writes a config.json and weights that load back to the same logits', async () => {
    const { model } = await loadModelDir(join(FIXTURES, name));
    const dir = join(mkdtempSync(join(tmpdir(), 'slm-gemma-')), name);
    await writeHfModelDir(dir, { config: model.config, tensors: model.eachHfTensor(), dtype: 'F32' });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(config.model_type).toBe(modelType);
    const reloaded = (await loadModelDir(dir)).model;
    expect(reloaded.config).toEqual(model.config);
    expect(maxLogprobDiff(fullLogits(reloaded, ids), fullLogits(model, ids))).toBe(0);
    model.dispose();
    reloaded.dispose();
  });
});

describe('Gemma as GGUF', () => {
  it.each(['tiny-gemma', 'tiny-gemma3'])('%s: exported and read back (resident and streamed) to the same config and logits', async (name) => {
    const { model } = await loadModelDir(join(FIXTURES, name));
    const ids = expectedOf(name).input_ids;
    const path = join(mkdtempSync(join(tmpdir(), 'slm-gemma-gguf-')), `${name}.gguf`);
    await exportGguf(model, FIXTURE_TOKENIZER, path, { type: 'F32' });
    for (const weights of ['resident', 'streamed'] as const) {
      const loaded = (await loadModel(path, { weights, pinBytes: 0 })).model;
      expect(loaded.config).toMatchObject({ ...model.config, bosTokenId: expect.anything(), eosTokenId: expect.anything(), stopTokenIds: expect.anything() });
      expect(maxLogprobDiff(fullLogits(loaded, ids), fullLogits(model, ids))).toBeLessThan(1e-5);
      loaded.dispose();
    }
    model.dispose();
  });

  it("reads a Gemma 3 GGUF that carries a vision tower (Ollama's gemma3:4b) as its text model", async () => {
    const { model } = await loadModelDir(join(FIXTURES, 'tiny-gemma3'));
    const dir = mkdtempSync(join(tmpdir(), 'slm-gemma-gguf-'));
    const text = join(dir, 'text.gguf');
    await exportGguf(model, FIXTURE_TOKENIZER, text, { type: 'F32' });
    const file = await GgufFile.open(text);
    const withVision = join(dir, 'vision.gguf');
    const writer = new GgufWriter(withVision);
    for (const key of file.metadata.keys()) if (!key.startsWith('general.alignment')) writer.add(key, file.metadata.get(key)!);
    const tensors = await Promise.all(file.tensors.map(async (t) => ({ name: t.name, shape: [...t.shape], data: await file.readTensor(t.name) })));
    await file.close();
    tensors.push({ name: 'v.patch_embd.weight', shape: [4, 32], data: new Float32Array(128) });
    for (const tensor of tensors) writer.addTensorInfo(tensor.name, tensor.shape, 'F32');
    await writer.write(tensors);
    const loaded = (await loadModel(withVision)).model;
    const ids = expectedOf('tiny-gemma3').input_ids;
    expect(maxLogprobDiff(fullLogits(loaded, ids), fullLogits(model, ids))).toBeLessThan(1e-5);
    loaded.dispose();
    model.dispose();
  });

  it("refuses a query_pre_attn_scalar llama.cpp would not use (it derives the scale from head_dim)", async () => {
    const { model } = await loadModelDir(join(FIXTURES, 'tiny-gemma2'));
    const path = join(mkdtempSync(join(tmpdir(), 'slm-gemma-gguf-')), 'gemma2.gguf');
    await expect(exportGguf(model, FIXTURE_TOKENIZER, path, { type: 'F32' })).rejects.toThrow("queryPreAttnScalar 24 (llama.cpp's gemma2 has 16) cannot be written to GGUF");
    model.dispose();
  });
});

describe('the Gemma traits the fixtures exercise', () => {
  it.each([
    ['tiny-gemma2', { attnLogitSoftcap: null }],
    ['tiny-gemma2', { finalLogitSoftcap: null }],
    ['tiny-gemma2', { slidingWindow: null, layerTypes: undefined }],
    ['tiny-gemma2', { queryPreAttnScalar: 16 }],
    ['tiny-gemma3', { localRopeTheta: null }],
    ['tiny-gemma3', { ropeScaling: null }],
    ['tiny-gemma3', { slidingWindow: null, layerTypes: undefined }],
  ] as [string, Partial<ModelConfig>][])('%s moves off the reference without %o', async (name, change) => {
    const expected = expectedOf(name);
    const { model } = await loadModelDir(join(FIXTURES, name));
    const changed = await withConfig(model, change);
    expect(maxLogprobDiff(fullLogits(changed, expected.input_ids), expected.logits)).toBeGreaterThan(2e-2);
    model.dispose();
    changed.dispose();
  });

  it('reads a vision-language Gemma 3 as its text model: text_config, language_model weights, the outer eos ids', async () => {
    const { model } = await loadModelDir(join(FIXTURES, 'tiny-gemma3'));
    expect(model.config).toMatchObject({
      numLayers: 6,
      layerTypes: ['sliding', 'sliding', 'full', 'sliding', 'sliding', 'full'],
      slidingWindow: 5,
      localRopeTheta: 10000,
      ropeTheta: 1e6,
      ropeScaling: { ropeType: 'linear', factor: 8 },
      qkNorm: true,
      stopTokenIds: [1, 60],
      embeddingScale: Math.sqrt(32),
    });
    model.dispose();
  });
});
