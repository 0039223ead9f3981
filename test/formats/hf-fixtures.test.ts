import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openHfWeights, readHfConfig, writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import type { HostTensor } from '../../src/formats/safetensors.ts';

/**
 * The model directories written by test/fixtures/make_hf_reference.py (PyTorch, hand-written safetensors)
 * read back with this project's readers: config mapping, sharding, BF16, and every tensor's shape, sum and
 * first values as the script recorded them.
 */
const FIXTURES = new URL('../fixtures/hf/', import.meta.url).pathname;

interface Expected {
  input_ids: number[];
  logits: number[][];
  logits_prefix: number[][];
  tensors: Record<string, { shape: number[]; sum: number; first: number[] }>;
}

async function expectedOf(name: string): Promise<Expected> {
  return JSON.parse(await readFile(join(FIXTURES, name, 'expected.json'), 'utf8'));
}

async function readAll(dir: string): Promise<HostTensor[]> {
  const weights = await openHfWeights(dir);
  try {
    return await Promise.all(weights.names().map((name) => weights.read(name)));
  } finally {
    await weights.close();
  }
}

function checkAgainstScript(tensors: HostTensor[], expected: Expected): void {
  expect(tensors.map((t) => t.name).sort()).toEqual(Object.keys(expected.tensors).sort());
  for (const tensor of tensors) {
    const recorded = expected.tensors[tensor.name];
    expect(tensor.shape, tensor.name).toEqual(recorded.shape);
    const sum = tensor.data.reduce((total, x) => total + x, 0);
    expect(Math.abs(sum - recorded.sum), tensor.name).toBeLessThan(1e-9 * Math.max(1, Math.abs(recorded.sum)));
    expect([...tensor.data.subarray(0, 3)], tensor.name).toEqual(recorded.first.map(Math.fround));
  }
}

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('tiny-llama (F32, two shards, llama3 rope scaling, GQA)', () => {
  const dir = join(FIXTURES, 'tiny-llama');

  it('maps config.json', async () => {
    const { config } = await readHfConfig(dir);
    expect(config).toEqual({
      modelType: 'llama',
      vocabSize: 64,
      hiddenSize: 32,
      intermediateSize: 48,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 8,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      ropeScaling: { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 },
      maxPositionEmbeddings: 128,
      attentionBias: false,
      qkNorm: false,
      tieWordEmbeddings: false,
      bosTokenId: 1,
      eosTokenId: 2,
      longRope: null,
      rotaryDim: 8,
      slidingWindow: null,
      layerTypes: Array(2).fill('full'),
      localRopeTheta: null,
      hiddenActivation: 'silu',
      normWeightOffset: 0,
      embeddingScale: 1,
      sandwichNorms: false,
      queryPreAttnScalar: 8,
      attnLogitSoftcap: null,
      finalLogitSoftcap: null,
      stopTokenIds: [2, 3],
    });
  });

  it('reads every tensor from both shards as the script stored it', async () => {
    expect((await readdir(dir)).filter((f) => f.endsWith('.safetensors')).sort()).toEqual([
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
    ]);
    const tensors = await readAll(dir);
    expect(tensors.find((t) => t.name === 'lm_head.weight')?.shape).toEqual([64, 32]);
    expect(tensors.find((t) => t.name === 'model.layers.1.self_attn.k_proj.weight')?.shape).toEqual([16, 32]);
    checkAgainstScript(tensors, await expectedOf('tiny-llama'));
  });
});

describe('tiny-qwen2 (BF16, tied embeddings, biases, head_dim != hidden / heads)', () => {
  const dir = join(FIXTURES, 'tiny-qwen2');

  it('maps config.json', async () => {
    const { config, raw } = await readHfConfig(dir);
    expect(raw.torch_dtype).toBe('bfloat16');
    expect(config).toMatchObject({
      modelType: 'qwen2',
      hiddenSize: 48,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      ropeTheta: 1e6,
      ropeScaling: null,
      attentionBias: true,
      tieWordEmbeddings: true,
      rmsNormEps: 1e-6,
    });
  });

  it('reads the BF16 weights as the script stored them, without an lm_head', async () => {
    const tensors = await readAll(dir);
    expect(tensors.some((t) => t.name === 'lm_head.weight')).toBe(false);
    expect(tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')?.shape).toEqual([64, 48]);
    expect(tensors.find((t) => t.name === 'model.layers.0.self_attn.k_proj.bias')?.shape).toEqual([32]);
    checkAgainstScript(tensors, await expectedOf('tiny-qwen2'));
  });

  it('writes the same values back in BF16 losslessly', async () => {
    const { config } = await readHfConfig(dir);
    const tensors = await readAll(dir);
    const out = await mkdtemp(join(tmpdir(), 'slm-qwen2-copy-'));
    tempDirs.push(out);
    await writeHfModelDir(join(out, 'copy'), { config, tensors, dtype: 'BF16' });
    expect(await readAll(join(out, 'copy'))).toEqual(tensors);
    expect((await readHfConfig(join(out, 'copy'))).config).toEqual(config);
  });
});

describe.each(['tiny-llama', 'tiny-qwen2'])('%s expected.json', (name) => {
  it('holds causal logits for the full sequence and for a prefix', async () => {
    const expected = await expectedOf(name);
    const vocab = 64;
    expect(expected.input_ids).toHaveLength(12);
    expect(expected.logits).toHaveLength(12);
    expect(expected.logits.every((row) => row.length === vocab)).toBe(true);
    expect(expected.logits_prefix).toHaveLength(5);
    for (const [t, row] of expected.logits_prefix.entries()) {
      for (const [v, x] of row.entries()) expect(Math.abs(x - expected.logits[t][v])).toBeLessThan(1e-5);
    }
  });
});
