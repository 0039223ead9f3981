/**
 * A base whose matrices stay compact in host memory and stream into the backend per layer computes what
 * the same weights held as float32 variables compute: logits, KV-cache decoding, and LoRA gradients
 * through recomputed layers (dropout masks replayed).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { BF16_ROWS_PRODUCT, F32_ROWS_PRODUCT, QUANT_ROWS_PRODUCT } from '../../src/backend/kernels/rows-product.ts';
import { localTarget } from '../../src/eval/targets.ts';
import { exportGguf } from '../../src/model-files/gguf-model.ts';
import { writePeftAdapter } from '../../src/model-files/peft.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { openHfWeights, readHfConfig } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { parameterSpecs } from '../../src/model/parameters.ts';
import { FrozenWeights, type PinnedForm } from '../../src/model/frozen-weights.ts';
import { generateTokens } from '../../src/model/generate.ts';
import { RAW_ROWS_MAX_ROWS } from '../../src/model/matmul.ts';
import { GREEDY } from '../../src/model/sampling.ts';
import { scoreTokens } from '../../src/model/score.ts';
import { LoraAdapter } from '../../src/model/lora.ts';
import { resolveLoraConfig } from '../../src/model/lora-config.ts';
import { loadModel } from '../../src/model-files/load.ts';
import { Rng } from '../../src/util/rng.ts';
import { chunkedCrossEntropy, chunkedTokenNll } from '../../trainers/losses/chunked-cross-entropy.ts';
import { crossEntropy, tokenNll } from '../../trainers/losses/cross-entropy.ts';
import { distillationObjective } from '../../trainers/losses/distillation-objective.ts';
import { randomizeLoraB } from '../helpers/lora.ts';
import { randomIds, TINY_GEMMA2, tinyModel } from '../helpers/tiny-model.ts';
import { FIXTURE_TOKENIZER } from '../fixtures/gguf/tokenizers.ts';

await initBackend('wasm');

const dir = await mkdtemp(join(tmpdir(), 'slm-streamed-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The same BF16 folder loaded both ways; the streamed one with a 5-row head chunk and, unless told, nothing pinned. */
async function bothWays(overrides: Parameters<typeof tinyModel>[0], name: string, pinBytes = 0, pinAs: PinnedForm = 'stored'): Promise<{ resident: CausalLM; streamed: CausalLM }> {
  const path = join(dir, name);
  const model = tinyModel(overrides);
  await writeHfModelDir(path, { config: model.config, tensors: model.eachHfTensor(), dtype: 'BF16' });
  model.dispose();
  const resident = (await loadModel(path, { weights: 'resident' })).model;
  const { config } = await readHfConfig(path);
  const weights = await openHfWeights(path);
  const streamed = await CausalLM.fromCompactTensors(config, (n) => weights.readCompact(n), { pinBytes, pinAs, headChunkRows: 5 });
  await weights.close();
  return { resident, streamed };
}

/** How many times `fn` ran the kernel `name`. */
async function kernelCount(name: string, fn: () => void): Promise<number> {
  return (await tf.profile(fn)).kernels.filter((kernel) => kernel.name === name).length;
}

/** Products of a streamed forward pass: every layer's q|k|v, o, gate|up and down, and the head's 5-row chunks. */
function productsPerForward(numLayers: number, vocabSize: number): number {
  return 4 * numLayers + Math.ceil(vocabSize / 5);
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

const lora = resolveLoraConfig({ rank: 4, alpha: 8, targets: 'all-linear', dropout: 0.2 });

/** CE and its gradients for every adapter parameter, dropout on, from a fixed random state. */
function adapterGradients(model: CausalLM, ids: tf.Tensor2D, targets: tf.Tensor1D): Map<string, Float32Array> {
  const adapter = LoraAdapter.init(model, lora, 3);
  randomizeLoraB(adapter, 5, 0.1);
  adapter.training = true;
  const project = adapter.wrap(model);
  const [B, T] = ids.shape;
  const { value, grads } = tf.variableGrads(
    () => crossEntropy(tf.reshape(model.forward(ids, undefined, project), [B * T, -1]) as tf.Tensor2D, targets, tf.ones([B * T])),
    [...adapter.params.values()],
  );
  const out = new Map([...adapter.params].map(([name, v]) => [name, grads[v.name].dataSync() as Float32Array]));
  tf.dispose([value, ...Object.values(grads)]);
  adapter.dispose();
  return out;
}

describe.each([
  ['qwen2, tied head', { modelType: 'qwen2', attentionBias: true, qkNorm: false, tieWordEmbeddings: true }],
  ['qwen3, lm_head', { modelType: 'qwen3', attentionBias: false, qkNorm: true, tieWordEmbeddings: false }],
  ['gemma2, soft-capped', TINY_GEMMA2],
])('a streamed base (%s)', (name, overrides) => {
  const ids = randomIds(new Rng(2), 2, 9, 23);
  const targets = tf.tensor1d(Array.from({ length: 18 }, (_, i) => (i * 7) % 23), 'int32');

  it('gives the logits of the resident model, with no weight left in the backend', async () => {
    const { resident, streamed } = await bothWays(overrides, `logits-${name}`);
    expect(streamed.frozen?.names().length).toBeGreaterThan(0);
    const before = tf.memory().numTensors;
    const logits = streamed.forward(ids);
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(maxDiff(logits, resident.forward(ids))).toBeLessThan(1e-5);
    expect(streamed.parameterCount()).toBe(resident.parameterCount());
    resident.dispose();
    streamed.dispose();
  });

  it('takes the BF16 weights as stored for products of few rows, and decoded to float32 beyond RAW_ROWS_MAX_ROWS', async () => {
    const { resident, streamed } = await bothWays(overrides, `raw-${name}`);
    const rawProducts = async (batch: tf.Tensor2D) => kernelCount(BF16_ROWS_PRODUCT, () => streamed.forward(batch).dispose());
    const { numLayers, vocabSize } = streamed.config;
    expect(await rawProducts(ids)).toBe(productsPerForward(numLayers, vocabSize));
    const many = randomIds(new Rng(3), 1, RAW_ROWS_MAX_ROWS + 1, 23);
    expect(await rawProducts(many)).toBe(0);
    expect(maxDiff(streamed.forward(many), resident.forward(many))).toBeLessThan(1e-5);
    resident.dispose();
    streamed.dispose();
  });

  it('multiplies few rows by pinned float32 blocks in the rows kernel, with the logits of the resident model', async () => {
    const { resident, streamed } = await bothWays(overrides, `pinned-${name}`, 2 ** 30, 'float32');
    const few = randomIds(new Rng(5), 1, 3, 23);
    const { numLayers, vocabSize } = streamed.config;
    expect(await kernelCount(F32_ROWS_PRODUCT, () => streamed.forward(few).dispose())).toBe(productsPerForward(numLayers, vocabSize));
    expect(await kernelCount(BF16_ROWS_PRODUCT, () => streamed.forward(few).dispose())).toBe(0);
    expect(maxDiff(streamed.forward(few), resident.forward(few))).toBeLessThan(1e-5);
    resident.dispose();
    streamed.dispose();
  });

  it('pins blocks as stored for inference: half the bytes of float32 pins, read by the rows kernel, float32 uploads beyond', async () => {
    const loadPinned = async (pinAs: PinnedForm) => {
      const before = tf.memory().numBytes;
      const { resident, streamed } = await bothWays(overrides, `pin-${pinAs}-${name}`, 2 ** 30, pinAs);
      return { resident, streamed, preloaded: tf.memory().numBytes - before - resident.parameterCount() * 4 };
    };
    const float32 = await loadPinned('float32');
    float32.resident.dispose();
    float32.streamed.dispose();
    const { resident, streamed, preloaded } = await loadPinned('stored');
    // Every layer's matrices were pinned at load, BF16 in int32 pairs: 2 bytes a weight against 4.
    const layerWeights = parameterSpecs(streamed.config)
      .filter((spec) => spec.name.startsWith('model.layers.') && spec.hfShape.length === 2)
      .reduce((n, spec) => n + spec.hfShape[0] * spec.hfShape[1], 0);
    expect(float32.preloaded - preloaded).toBe(2 * layerWeights);

    const few = randomIds(new Rng(7), 1, 3, 23);
    const many = randomIds(new Rng(8), 1, RAW_ROWS_MAX_ROWS + 1, 23);
    const { numLayers, vocabSize } = streamed.config;
    expect(await kernelCount(BF16_ROWS_PRODUCT, () => streamed.forward(few).dispose())).toBe(productsPerForward(numLayers, vocabSize));
    expect(await kernelCount(F32_ROWS_PRODUCT, () => streamed.forward(few).dispose())).toBe(0);
    expect(maxDiff(streamed.forward(few), resident.forward(few))).toBeLessThan(1e-5);
    const held = tf.memory().numTensors;
    expect(maxDiff(streamed.forward(many), resident.forward(many))).toBeLessThan(1e-5);
    expect(tf.memory().numTensors).toBe(held + 2); // the two logits: the float32 uploads were freed
    resident.dispose();
    streamed.dispose();
  });

  it('decodes the same tokens with a KV cache', async () => {
    const { resident, streamed } = await bothWays(overrides, `decode-${name}`);
    const prompt = [1, 5, 9, 2];
    const a = await collect(generateTokens(resident, prompt, { ...GREEDY, maxTokens: 6, seed: 0, stopIds: [] }));
    const b = await collect(generateTokens(streamed, prompt, { ...GREEDY, maxTokens: 6, seed: 0, stopIds: [] }));
    expect(a).toHaveLength(6);
    expect(b).toEqual(a);
    resident.dispose();
    streamed.dispose();
  });

  it('gives LoRA the gradients of the resident model through recomputed layers', async () => {
    const { resident, streamed } = await bothWays(overrides, `grads-${name}`);
    const expected = adapterGradients(resident, ids, targets);
    const before = tf.memory().numTensors;
    const actual = adapterGradients(streamed, ids, targets);
    expect(tf.memory().numTensors).toBe(before);
    for (const [param, g] of expected) {
      const scale = Math.max(...g.map(Math.abs));
      expect(scale).toBeGreaterThan(0);
      const diff = Math.max(...actual.get(param)!.map((v, i) => Math.abs(v - g[i])));
      expect(diff / scale, param).toBeLessThan(1e-4);
    }
    resident.dispose();
    streamed.dispose();
  });
});

describe.each([
  ['Q8_0', ['Q8_0']],
  ['Q4_K_M', ['Q4_K', 'Q6_K']],
] as const)('a streamed GGUF base (%s)', (type, storedTypes) => {
  it('multiplies few rows by the blocks as stored in the quantized rows kernel, with the logits of the same file loaded resident', async () => {
    // Rows of whole 256-value super-blocks, so that Q4_K_M keeps its K-quants.
    const overrides = { hiddenSize: 256, intermediateSize: 512, vocabSize: 64, numHeads: 4, numKvHeads: 2, qkNorm: false, attentionBias: false };
    const model = tinyModel(overrides);
    const path = join(dir, `gguf-${type}.gguf`);
    await exportGguf(model, FIXTURE_TOKENIZER, path, { type });
    model.dispose();
    const resident = (await loadModel(path, { weights: 'resident' })).model;
    const streamed = (await loadModel(path, { weights: 'streamed', pinBytes: 0 })).model;
    const frozen = streamed.frozen!;
    const matrixTypes = new Set(frozen.names().filter((name) => name !== 'model.embed_tokens.weight' && frozen.compact(name).shape.length === 2).map((name) => frozen.compact(name).type));
    expect([...matrixTypes].sort()).toEqual([...storedTypes].sort());

    const few = randomIds(new Rng(4), 1, 3, 64);
    // Every layer's q|k|v, o, gate|up and down and every head chunk; a q|k|v of two types is two products.
    const products = 4 * streamed.config.numLayers + streamed.headChunks().length;
    const mixedGroups = type === 'Q4_K_M' ? Array.from({ length: streamed.config.numLayers }, (_, i) => frozen.compact(`model.layers.${i}.self_attn.v_proj.weight`).type === 'Q6_K').filter(Boolean).length : 0;
    expect(await kernelCount(QUANT_ROWS_PRODUCT, () => streamed.forward(few).dispose())).toBe(products + mixedGroups);
    expect(await kernelCount(F32_ROWS_PRODUCT, () => streamed.forward(few).dispose())).toBe(0);
    const expected = resident.forward(few);
    const scale = tf.max(tf.abs(expected)).dataSync()[0];
    expect(maxDiff(streamed.forward(few), expected) / scale).toBeLessThan(1e-4); // float32 sums in another order
    resident.dispose();
    streamed.dispose();
  });
});

describe('recomputation on a resident model', () => {
  it('leaves every gradient as it was', () => {
    const model = tinyModel();
    const ids = randomIds(new Rng(4), 2, 8, 23);
    const targets = tf.tensor1d(Array.from({ length: 16 }, (_, i) => (i * 5) % 23), 'int32');
    const loss = () => crossEntropy(tf.reshape(model.forward(ids), [16, -1]) as tf.Tensor2D, targets, tf.ones([16]));
    const plain = tf.variableGrads(loss);
    model.recompute = true;
    const recomputedGrads = tf.variableGrads(loss);
    for (const [name, g] of Object.entries(plain.grads)) {
      expect(maxDiff(recomputedGrads.grads[name], g), name).toBeLessThan(1e-5);
    }
    model.dispose();
  });
});

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('cross-entropy through a streamed head', () => {
  it.each([
    ['qwen2', { modelType: 'qwen2', attentionBias: true, qkNorm: false, tieWordEmbeddings: true }],
    ['gemma2, final logits soft-capped', TINY_GEMMA2],
  ])('equals the full-logits cross-entropy in value and gradient, masked positions excluded (%s)', async (name, overrides) => {
    const { resident, streamed } = await bothWays(overrides, `chunked-ce-${name}`);
    const rng = new Rng(9);
    const hidden = tf.variable(tf.tensor2d(Array.from({ length: 6 * 16 }, () => 3 * rng.normal()), [6, 16]));
    const targets = Int32Array.from([3, 22, 0, 7, 7, 15]);
    const mask = tf.tensor1d([1, 1, 0, 1, 1, 1]);
    const chunked = tf.variableGrads(() => chunkedCrossEntropy(hidden, streamed, targets, mask), [hidden]);
    const full = tf.variableGrads(() => crossEntropy(resident.headLogits(hidden), tf.tensor1d(targets, 'int32'), mask), [hidden]);
    expect(streamed.headChunks().length).toBe(5);
    expect(Math.abs(chunked.value.dataSync()[0] - full.value.dataSync()[0])).toBeLessThan(1e-5);
    expect(maxDiff(chunked.grads[hidden.name], full.grads[hidden.name])).toBeLessThan(1e-6);
    resident.dispose();
    streamed.dispose();
  });

  it('gives each position its own NLL and gradient, as the full logits do, under uneven upstream weights', async () => {
    const { resident, streamed } = await bothWays(TINY_GEMMA2, 'chunked-nll');
    const rng = new Rng(11);
    const hidden = tf.variable(tf.tensor2d(Array.from({ length: 5 * 16 }, () => 3 * rng.normal()), [5, 16]));
    const targets = Int32Array.from([1, 21, 4, 4, 19]);
    // A weighted sum, as preference losses take sequence sums with signs: every position's gradient counts.
    const weights = tf.tensor1d([0.5, -2, 1, 3, -0.25]);
    const chunked = tf.variableGrads(() => tf.sum(tf.mul(chunkedTokenNll(hidden, streamed, targets), weights)) as tf.Scalar, [hidden]);
    const full = tf.variableGrads(() => tf.sum(tf.mul(tokenNll(resident.headLogits(hidden), tf.tensor1d(targets, 'int32')), weights)) as tf.Scalar, [hidden]);
    const perToken = [chunkedTokenNll(hidden, streamed, targets), tokenNll(resident.headLogits(hidden), tf.tensor1d(targets, 'int32'))];
    expect(maxDiff(perToken[0], perToken[1])).toBeLessThan(1e-5);
    expect(Math.abs(chunked.value.dataSync()[0] - full.value.dataSync()[0])).toBeLessThan(1e-4);
    expect(maxDiff(chunked.grads[hidden.name], full.grads[hidden.name])).toBeLessThan(1e-5);
    resident.dispose();
    streamed.dispose();
  });
});

describe('scoring through a streamed head', () => {
  it.each([
    ['qwen3', { modelType: 'qwen3', attentionBias: false, qkNorm: true, tieWordEmbeddings: false }],
    ['gemma2', TINY_GEMMA2],
  ])('gives the log-probabilities and top-k of the resident model without [T, V] log-probabilities (%s)', async (name, overrides) => {
    const { resident, streamed } = await bothWays(overrides, `score-${name}`);
    const ids = [4, 9, 22, 0, 13, 7, 7, 18];
    const [a, b] = [await scoreTokens(resident, ids, 6), await scoreTokens(streamed, ids, 6)];
    expect(b.logprobs[0]).toBeNull();
    b.logprobs.slice(1).forEach((lp, i) => expect(Math.abs(lp! - a.logprobs[i + 1]!)).toBeLessThan(1e-5));
    b.topK.slice(1).forEach((top, i) => {
      expect(top!.map((e) => e.id)).toEqual(a.topK[i + 1]!.map((e) => e.id));
      top!.forEach((e, j) => expect(Math.abs(e.logprob - a.topK[i + 1]![j].logprob)).toBeLessThan(1e-5));
    });
    resident.dispose();
    streamed.dispose();
  });
});

describe('a PEFT adapter evaluated on a streamed base', () => {
  it('runs beside the compact weights and scores as the same adapter merged into the resident base', async () => {
    const base = join(dir, 'adapter-base');
    const model = tinyModel({ modelType: 'qwen2', attentionBias: true, qkNorm: false, tieWordEmbeddings: true, vocabSize: createByteLevelTokenizer().vocabSize });
    await writeHfModelDir(base, { config: model.config, tensors: model.eachHfTensor(), dtype: 'BF16', tokenizerJson: createByteLevelTokenizer().toJSON() });
    const adapter = LoraAdapter.init(model, lora, 2);
    randomizeLoraB(adapter, 8, 0.2);
    await writePeftAdapter(join(dir, 'adapter'), lora, await adapter.peftTensors(), base);
    adapter.dispose();
    model.dispose();
    const logprobs = async (weights: 'resident' | 'streamed') => {
      const target = await localTarget(join(dir, 'adapter'), { weights });
      const result = await target.loglikelihood!('Question: 2+2?', [' 4', ' 5']);
      target.dispose();
      return result.logprobs;
    };
    const before = tf.memory().numTensors;
    const streamed = await logprobs('streamed');
    expect(tf.memory().numTensors).toBe(before);
    const resident = await logprobs('resident');
    streamed.forEach((lp, i) => expect(Math.abs(lp - resident[i])).toBeLessThan(1e-4));
  });
});

describe('online distillation through a streamed head', () => {
  it.each([
    ['qwen2, tied head', { modelType: 'qwen2', attentionBias: true, qkNorm: false, tieWordEmbeddings: true }],
    ['gemma2, soft-capped', TINY_GEMMA2],
  ])('gives the loss, its parts and the LoRA gradients of the resident student, with no [N, V] logits (%s)', async (name, overrides) => {
    const { resident, streamed } = await bothWays(overrides, `online-kd-${name}`);
    const teacher = tinyModel(overrides, 11);
    const rng = new Rng(6);
    const [B, T] = [2, 9];
    const batch = {
      inputs: Int32Array.from({ length: B * T }, () => rng.int(23)),
      targets: Int32Array.from({ length: B * T }, () => rng.int(23)),
      mask: Float32Array.from({ length: B * T }, (_, i) => (i % 5 === 2 ? 0 : 1)),
      batchSize: B,
      seqLen: T,
      tokens: B * T,
    };
    const options = { alpha: 0.4, temperature: 2, divergence: 'jsd', beta: 0.3, tail: 'bucket', storedTemperature: 1 } as const;
    const run = (student: CausalLM) => {
      const adapter = LoraAdapter.init(student, lora, 3);
      randomizeLoraB(adapter, 5, 0.1);
      const online = { model: teacher, rowsPerChunk: 7, vocabPerChunk: 6 };
      const observed = new Map<string, number>();
      const loss = distillationObjective(student, adapter.wrap(student), { ...options, online });
      const { value, grads } = tf.variableGrads(
        () => loss(batch, (key, metric) => void observed.set(key, metric.dataSync()[0])),
        [...adapter.params.values()],
      );
      const gradients = new Map([...adapter.params].map(([param, v]) => [param, grads[v.name].dataSync() as Float32Array]));
      const result = { loss: value.dataSync()[0], observed, gradients };
      tf.dispose([value, ...Object.values(grads)]);
      adapter.dispose();
      return result;
    };
    const expected = run(resident);
    const wholeLogits = vi.spyOn(streamed, 'headLogits');
    const actual = run(streamed);
    expect(wholeLogits).not.toHaveBeenCalled();
    expect(Math.abs(actual.loss - expected.loss)).toBeLessThan(1e-5);
    for (const key of ['ce', 'kd', 'top1_agreement']) {
      expect(Math.abs(actual.observed.get(key)! - expected.observed.get(key)!), key).toBeLessThan(1e-5);
    }
    expect(expected.observed.get('kd')).toBeGreaterThan(1e-3);
    for (const [param, g] of expected.gradients) {
      const scale = Math.max(...g.map(Math.abs));
      expect(scale).toBeGreaterThan(0);
      const diff = Math.max(...actual.gradients.get(param)!.map((v, i) => Math.abs(v - g[i])));
      expect(diff / scale, param).toBeLessThan(1e-4);
    }
    [resident, streamed, teacher].forEach((m) => m.dispose());
  });
});

describe('pinning as stored', () => {
  it('pins float32 on a backend without the rows products, where raw blocks could serve no product', async () => {
    expect(new FrozenWeights(new Map(), 0, 'stored').pinAs).toBe('stored');
    expect(new FrozenWeights(new Map(), 0, 'float32').pinAs).toBe('float32');
    await tf.setBackend('cpu');
    try {
      expect(new FrozenWeights(new Map(), 0, 'stored').pinAs).toBe('float32');
    } finally {
      await tf.setBackend('wasm');
    }
  });
});
