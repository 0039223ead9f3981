/**
 * Exported GGUF files run by real llama.cpp (node-llama-cpp's prebuilt CPU binaries): its next-token
 * probabilities against our model's softmax at every position, and its tokenization against ours.
 *
 * llama.cpp is asked for the full distribution: sampling with temperature 1, topK = vocabulary size, topP 1,
 * minP 0 leaves every logit as it is. Its KV cache is F32 and flash attention is off, since both otherwise
 * round keys and values to F16 (with them on, the F32 difference below grows from ~1e-8 to ~3e-5).
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { exportGguf, loadGgufModel, type GgufExportTokenizer } from '../../src/model-files/gguf-model.ts';
import { GgufFile } from '../../src/formats/gguf/reader.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig, type ModelConfigInput } from '../../src/model/config.ts';
import { loadModelDir } from '../../src/model-files/load.ts';
import { parameterSpecs } from '../../src/model/parameters.ts';
import { BYTE_LEVEL_TOKENIZER_CONFIG, createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { tokenizerFromJson } from '../../src/tokenizer/hf-tokenizer.ts';
import { tokenizerFromGguf } from '../../src/tokenizer/gguf-tokenizer.ts';
import { Rng } from '../../src/util/rng.ts';
import { disposeLlamaCpp, llamaCpp, llamaCppProbabilities } from '../helpers/llama-cpp.ts';
import { FIXTURE_TOKENIZER, LLAMA3_SPLIT, MERGES_VOCAB_SIZE, mergesTokenizer, QWEN2_SPLIT } from '../fixtures/gguf/tokenizers.ts';

await initBackend('cpu');

const FIXTURES = join(import.meta.dirname, '../fixtures/hf');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slm-llama-cpp-'));
});
afterAll(async () => {
  await disposeLlamaCpp();
  await rm(dir, { recursive: true, force: true });
});

function ourProbabilities(model: CausalLM, ids: number[]): number[][] {
  return tf.tidy(() => (tf.softmax(model.forward(tf.tensor2d(ids, [1, ids.length], 'int32'))).arraySync() as number[][][])[0]);
}

/** NaN (a token llama.cpp left out) makes the difference NaN, which fails every bound. */
function maxAbsDiff(a: number[][], b: number[][]): number {
  let max = 0;
  a.forEach((row, i) => row.forEach((v, j) => (max = Math.max(max, Number.isNaN(v - b[i][j]) ? Number.NaN : Math.abs(v - b[i][j])))));
  return max;
}

interface Case {
  /** The GGUF architecture the export should use. */
  arch: string;
  load(): Promise<{ model: CausalLM; tokenizer: GgufExportTokenizer; ids: number[] }>;
}

/** Every weight random (std 0.1 by default, norms around 1, biases around 0), so no part of the model is trivially exact. */
async function randomModel(input: ModelConfigInput, seed: number, std = 0.1): Promise<CausalLM> {
  const config = resolveModelConfig(input);
  const rng = new Rng(seed);
  const noise = (size: number, mean: number, std: number) => Float32Array.from({ length: size }, () => mean + std * rng.normal());
  const tensors = new Map(
    parameterSpecs(config).map((spec) => {
      const size = spec.hfShape.reduce((a, b) => a * b, 1);
      const data = spec.init === 'ones' ? noise(size, 1, 0.1) : spec.init === 'zeros' ? noise(size, 0, 0.05) : noise(size, 0, std);
      return [spec.name, { name: spec.name, shape: spec.hfShape, data }];
    }),
  );
  return CausalLM.fromHfTensors(config, async (name) => tensors.get(name));
}

const byteLevel = createByteLevelTokenizer();
const BYTE_LEVEL = { json: byteLevel.toJSON(), config: BYTE_LEVEL_TOKENIZER_CONFIG };
const SCRATCH_SHAPE = {
  vocabSize: 259,
  hiddenSize: 64,
  intermediateSize: 128,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  bosTokenId: 256,
  eosTokenId: 257,
};
const scratchCase = (arch: string, overrides: Partial<ModelConfigInput>): Case => ({
  arch,
  async load() {
    const model = await randomModel({ ...SCRATCH_SHAPE, ...overrides }, 5);
    const ids = byteLevel.encode('The quick brown fox jumps over the lazy dog. Ünïcödé 🦙!', { addSpecialTokens: true });
    return { model, tokenizer: BYTE_LEVEL, ids };
  },
});

const fixtureCase = (arch: string, name: string): Case => ({
  arch,
  async load() {
    const { model } = await loadModelDir(join(FIXTURES, name));
    const { input_ids: ids } = JSON.parse(await readFile(join(FIXTURES, name, 'expected.json'), 'utf8')) as { input_ids: number[] };
    return { model, tokenizer: FIXTURE_TOKENIZER, ids };
  },
});

const CASES: [string, Case][] = [
  ['a byte-level scratch model (vocab 259, hidden 64, GQA 4/2)', scratchCase('llama', {})],
  [
    'the same shape as qwen2 (q/k/v biases, tied embeddings)',
    scratchCase('qwen2', { modelType: 'qwen2', attentionBias: true, tieWordEmbeddings: true }),
  ],
  ['tiny-llama (Llama 3 rope scaling, untied head)', fixtureCase('llama', 'tiny-llama')],
  ['tiny-qwen2 (head_dim 16 != 48/4: written as llama with biases)', fixtureCase('llama', 'tiny-qwen2')],
  ['tiny-qwen3 (per-head q/k norms, head_dim 16 != 32/4, tied embeddings)', fixtureCase('qwen3', 'tiny-qwen3')],
  ['tiny-gemma (GeGLU, (1 + w) norms, scaled embeddings)', fixtureCase('gemma', 'tiny-gemma')],
  [
    'a Gemma 2 of the scratch shape (sandwich norms, soft-capped scores and logits, an 8-token window every other layer)',
    scratchCase('gemma2', {
      modelType: 'gemma2',
      tieWordEmbeddings: true,
      hiddenActivation: 'gelu_tanh',
      normWeightOffset: 1,
      embeddingScale: 8,
      sandwichNorms: true,
      attnLogitSoftcap: 1.5,
      finalLogitSoftcap: 2.5,
      slidingWindow: 8,
      layerTypes: ['sliding', 'full'],
    }),
  ],
  ['tiny-gemma3 (q/k norms, 5-token window, local and global RoPE bases, linear scaling)', fixtureCase('gemma3', 'tiny-gemma3')],
];

describe.each(CASES)('llama.cpp runs the GGUF export of %s', (name, testCase) => {
  it('with the same next-token probabilities from F32 (1e-5), Q8_0 and Q4_0 (5e-3 against the same quantized weights)', async () => {
    const { model, tokenizer, ids } = await testCase.load();
    const vocab = model.config.vocabSize;
    const f32 = join(dir, `${name.replace(/\W/g, '').slice(0, 24)}-f32.gguf`);
    await exportGguf(model, tokenizer, f32, { type: 'F32' });
    const file = await GgufFile.open(f32);
    expect(file.metadata.getString('general.architecture')).toBe(testCase.arch);
    await file.close();
    const ours = ourProbabilities(model, ids);
    // measured: 3.0e-8 to 3.7e-8 on the Llama-family models (their largest probabilities are 0.04 to 0.13).
    // Gemma's GeGLU: llama.cpp's CPU rounds each gate value to F16 and reads gelu from an F16 table
    // (ggml_vec_geglu_f32 under GGML_GELU_FP16), 2e-6 to 5.5e-5 here; with that rounding emulated in our
    // activation the six-layer tiny-gemma3 agreed to 4e-6 nats instead of 1.6e-3.
    const geglu = model.config.hiddenActivation === 'gelu_tanh';
    expect(maxAbsDiff(await llamaCppProbabilities(f32, ids, vocab), ours)).toBeLessThan(geglu ? 1e-4 : 1e-5);

    const q8 = f32.replace('-f32', '-q8_0');
    await exportGguf(model, tokenizer, q8, { type: 'Q8_0' });
    const quantized = await loadGgufModel(q8);
    const cpp = await llamaCppProbabilities(q8, ids, vocab);
    // llama.cpp also rounds activations to Q8_0 before each product with a Q8_0 weight: measured 0.7e-3 to 2.0e-3
    expect(maxAbsDiff(cpp, ourProbabilities(quantized.model, ids))).toBeLessThan(5e-3);
    // against the unquantized model: measured 1.2e-3 to 3.0e-3
    expect(maxAbsDiff(cpp, ours)).toBeLessThan(1e-2);
    const q8Loss = maxAbsDiff(ourProbabilities(quantized.model, ids), ours);
    quantized.model.dispose();

    // Q4_0: llama.cpp and we read the same 4-bit weights; it also rounds activations to Q8_0 for the products.
    const q4 = f32.replace('-f32', '-q4_0');
    await exportGguf(model, tokenizer, q4, { type: 'Q4_0' });
    const q4file = await GgufFile.open(q4);
    expect(q4file.tensors.filter((t) => t.shape.length === 2 && t.shape[1] % 32 === 0).every((t) => t.type === 'Q4_0')).toBe(true);
    await q4file.close();
    const q4model = await loadGgufModel(q4);
    const q4cpp = await llamaCppProbabilities(q4, ids, vocab);
    const q4error = maxAbsDiff(q4cpp, ourProbabilities(q4model.model, ids));
    expect(q4error).toBeLessThan(5e-3);
    // 4 bits lose more than 8 against the unquantized model
    expect(maxAbsDiff(ourProbabilities(q4model.model, ids), ours)).toBeGreaterThan(q8Loss);
    q4model.model.dispose();
    model.dispose();
  });
});

describe('SentencePiece vocabularies (Llama 2, Mistral, TinyLlama, Gemma) exported to GGUF', () => {
  /** test/fixtures/sentencepiece/make.py: small BPE models trained by SentencePiece, their tokenizer.json and SentencePiece's own ids. */
  it.each([
    ['llama', true],
    ['gemma', false],
  ])('%s style: llama.cpp, our GGUF reader and our tokenizer.json all tokenize as SentencePiece', async (style, spacePrefix) => {
    const folder = join(import.meta.dirname, '../fixtures/sentencepiece', style);
    const tokenizer = { json: await readFile(join(folder, 'tokenizer.json'), 'utf8'), config: JSON.parse(await readFile(join(folder, 'tokenizer_config.json'), 'utf8')) };
    const { texts, ids } = JSON.parse(await readFile(join(folder, 'expected.json'), 'utf8')) as { texts: string[]; ids: number[][] };
    const ours = tokenizerFromJson(tokenizer.json, tokenizer.config);
    texts.forEach((text, i) => expect(ours.encode(text), text).toEqual(ids[i]));

    const model = CausalLM.init(resolveModelConfig({ vocabSize: 420, hiddenSize: 32, intermediateSize: 32, numLayers: 1, numHeads: 2 }), { seed: 1 });
    const path = join(dir, `sentencepiece-${style}.gguf`);
    await exportGguf(model, tokenizer, path, { type: 'F32' });
    model.dispose();
    const file = await GgufFile.open(path);
    expect(file.metadata.getString('tokenizer.ggml.model')).toBe('llama');
    expect(file.metadata.get('tokenizer.ggml.add_space_prefix')).toMatchObject({ value: spacePrefix });
    const types = file.metadata.getNumberArray('tokenizer.ggml.token_type')!;
    const tokens = file.metadata.getStringArray('tokenizer.ggml.tokens')!;
    expect([types[0], types[1], types[tokens.indexOf('<0x00>')]]).toEqual([2, 3, 6]); // <unk> unknown, <s> control, <0x00> byte
    expect(file.metadata.get('tokenizer.ggml.add_bos_token')).toMatchObject({ value: true });
    const reader = tokenizerFromGguf(file.metadata.values());
    await file.close();
    texts.forEach((text, i) => expect(reader.encode(text), text).toEqual(ids[i]));

    const cpp = await (await llamaCpp()).loadModel({ modelPath: path, gpuLayers: 0, vocabOnly: true });
    try {
      texts.forEach((text, i) => expect(cpp.tokenize(text, false), text).toEqual(ids[i]));
    } finally {
      await cpp.dispose();
    }
  });
});

describe('llama.cpp tokenizes exported vocabularies as we do', () => {
  const TEXTS = [
    'Hello world, hello WORLD!',
    "it's 1234567 o'clock, they'll say 3.14159",
    '  two spaces\n\nand\ttabs \n',
    'naïve 中文 🦙 ✅ <|eot_id|>',
  ];

  it.each([
    ['the byte-level scratch tokenizer', BYTE_LEVEL, 259],
    ["merges with Llama 3's split (llama-bpe)", mergesTokenizer(LLAMA3_SPLIT, true), MERGES_VOCAB_SIZE],
    ["merges with Qwen2's split (qwen2)", mergesTokenizer(QWEN2_SPLIT), MERGES_VOCAB_SIZE],
    ["merges with GPT-2's split (gpt-2)", mergesTokenizer(), MERGES_VOCAB_SIZE],
  ])('%s', async (name, tokenizer: GgufExportTokenizer, vocabSize) => {
    const config = resolveModelConfig({ vocabSize, hiddenSize: 32, intermediateSize: 32, numLayers: 1, numHeads: 2 });
    const model = CausalLM.init(config, { seed: 1 });
    const path = join(dir, `tokenizer-${name.split(' ').slice(-1)[0].replace(/\W/g, '')}.gguf`);
    await exportGguf(model, tokenizer, path, { type: 'F32' });
    model.dispose();
    const ours = tokenizerFromJson(tokenizer.json, tokenizer.config);
    const cpp = await (await llamaCpp()).loadModel({ modelPath: path, gpuLayers: 0, vocabOnly: true });
    try {
      for (const text of TEXTS) {
        expect(cpp.tokenize(text, false), text).toEqual(ours.encode(text));
        expect(cpp.tokenize(text, true), text).toEqual(ours.encode(text, { parseSpecialTokens: true }));
      }
    } finally {
      await cpp.dispose();
    }
  });
});

describe('K-quant exports (Q6_K, Q5_K_M, Q4_K_M) run by llama.cpp', () => {
  // Rows of 256 (whole super-blocks), four layers: the mixes' Q6_K layers and their plain ones both occur.
  const shape = { ...SCRATCH_SHAPE, hiddenSize: 256, intermediateSize: 512, numLayers: 4, numHeads: 4, numKvHeads: 2 };

  it('reads each file as we do, and loses more as the bits shrink: Q8_0 < Q6_K < Q5_K_M < Q4_K_M', async () => {
    const model = await randomModel(shape, 9, 0.05); // the scratch models' spread of logits at four times their width
    const ids = byteLevel.encode('The quick brown fox jumps over the lazy dog, twice.', { addSpecialTokens: true });
    const exact = ourProbabilities(model, ids);
    const errors: Record<string, number> = {};
    for (const type of ['Q8_0', 'Q6_K', 'Q5_K_M', 'Q4_K_M'] as const) {
      const path = join(dir, `k-quants-${type}.gguf`);
      await exportGguf(model, BYTE_LEVEL, path, { type });
      const file = await GgufFile.open(path);
      const types = new Map(file.tensors.map((t) => [t.name, t.type]));
      await file.close();
      if (type !== 'Q8_0') {
        expect(types.get('output.weight')).toBe('Q6_K');
        expect(types.get('blk.1.attn_q.weight')).toBe(type === 'Q6_K' ? 'Q6_K' : type.slice(0, 4));
        // use_more_bits(layer, 4): layers 2 and 3
        const base = type === 'Q6_K' ? 'Q6_K' : type.slice(0, 4);
        for (const tensor of ['ffn_down', 'attn_v']) {
          expect([0, 1, 2, 3].map((layer) => types.get(`blk.${layer}.${tensor}.weight`)), tensor).toEqual([base, base, 'Q6_K', 'Q6_K']);
        }
      }
      const quantized = await loadGgufModel(path);
      const ours = ourProbabilities(quantized.model, ids);
      quantized.model.dispose();
      // llama.cpp rounds activations to 8 bits before products with quantized weights (Q8_K for the K-quants)
      expect(maxAbsDiff(await llamaCppProbabilities(path, ids, shape.vocabSize), ours), type).toBeLessThan(5e-3);
      errors[type] = maxAbsDiff(ours, exact);
    }
    expect(errors.Q8_0).toBeLessThan(errors.Q6_K);
    expect(errors.Q6_K).toBeLessThan(errors.Q5_K_M);
    expect(errors.Q5_K_M).toBeLessThan(errors.Q4_K_M);
    model.dispose();
  });
});
