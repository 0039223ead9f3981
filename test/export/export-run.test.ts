import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { exportRun } from '../../src/export/export-run.ts';
import { readPeftAdapter } from '../../src/model-files/peft.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig, type ModelConfigInput } from '../../src/model/config.ts';
import { loadModel } from '../../src/model-files/load.ts';
import { LoraAdapter } from '../../src/model/lora.ts';
import { parseRecipe } from '../../src/recipe/index.ts';
import { silentLogger } from '../../src/util/progress.ts';
import { runRecipe } from '../../src/stages/run-recipe.ts';
import { BYTE_LEVEL_TOKENIZER_CONFIG, createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { GgufFile } from '../../src/formats/gguf/reader.ts';
import { disposeLlamaCpp, llamaCppProbabilities } from '../helpers/llama-cpp.ts';
import { TINY_GEMMA2 } from '../helpers/tiny-model.ts';

await initBackend('wasm');

const STORIES = resolve(import.meta.dirname, '../../datasets/data/stories-small.jsonl');
const ids = tf.tensor2d([[256, 79, 110, 101, 32, 100, 97, 121]], [1, 8], 'int32');

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

interface Base {
  config: Partial<ModelConfigInput>;
  tokenizerJson: string;
  tokenizerConfig: Record<string, unknown>;
  vocabSize: number;
}

const BYTE_LEVEL_BASE: Base = {
  config: {},
  tokenizerJson: createByteLevelTokenizer().toJSON(),
  tokenizerConfig: BYTE_LEVEL_TOKENIZER_CONFIG,
  vocabSize: createByteLevelTokenizer().vocabSize,
};

async function trainLora(dir: string, baseSpec = BYTE_LEVEL_BASE): Promise<{ runDir: string; base: string }> {
  const shape = { vocabSize: baseSpec.vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 64 };
  const config = resolveModelConfig({ ...shape, ...baseSpec.config });
  const model = CausalLM.init(config, { seed: 1, std: 0.1 });
  const base = join(dir, 'base');
  await writeHfModelDir(base, { config, tensors: model.hfTensors(), dtype: 'F32', tokenizerJson: baseSpec.tokenizerJson, tokenizerConfig: baseSpec.tokenizerConfig });
  model.dispose();
  const yaml = `name: lora
output_dir: runs
student: { type: lora, base: ${base}, rank: 4, alpha: 8, targets: [q, v, down] }
data: { train: ${STORIES}, seq_len: 32 }
train: { max_steps: 6, batch_size: 4, lr: 2.0e-2, checkpoint_every: 6, eval_every: 6 }
`;
  const result = await runRecipe(parseRecipe(yaml, join(dir, 'recipe.yaml'), dir), { logger: silentLogger, json: true, progressStream: { write: () => true } });
  return { runDir: result.runDir, base };
}

describe('exporting a LoRA run', () => {
  let run: { runDir: string; base: string };
  let adapted: tf.Tensor;

  beforeAll(async () => {
    run = await trainLora(mkdtempSync(join(tmpdir(), 'export-')));
    const { model } = await loadModel(run.base);
    const saved = await readPeftAdapter(join(run.runDir, 'final'));
    const adapter = LoraAdapter.fromPeftTensors(model, saved.config, saved.tensors);
    adapted = model.forward(ids, undefined, adapter.wrap(model));
    expect(maxDiff(adapted, model.forward(ids))).toBeGreaterThan(1e-3);
  });

  it('hf: the merged model gives the logits of base + adapter', async () => {
    const result = await exportRun({ run: run.runDir, format: 'hf' });
    const { model, tokenizer } = await loadModel(result.path);
    expect(maxDiff(model.forward(ids), adapted)).toBeLessThan(1e-4);
    expect(tokenizer!.eosId).toBe(257);
  });

  it('gguf: the merged model read back from GGUF gives the same logits (F32), and close ones (Q8_0)', async () => {
    const f32 = await exportRun({ run: run.runDir, format: 'gguf', ggufType: 'F32' });
    const fromF32 = await loadModel(join(f32.path, f32.files[0]));
    expect(maxDiff(fromF32.model.forward(ids), adapted)).toBeLessThan(1e-4);
    const q8 = await exportRun({ run: run.runDir, format: 'gguf', ggufType: 'Q8_0' });
    const fromQ8 = await loadModel(join(q8.path, q8.files[0]));
    expect(maxDiff(fromQ8.model.forward(ids), adapted)).toBeLessThan(5e-2);
  });

  it('peft: the adapter folder round-trips; ollama: a Modelfile next to the GGUF', async () => {
    const peft = await exportRun({ run: run.runDir, format: 'peft' });
    const copy = await readPeftAdapter(peft.path);
    expect(copy.config.targets).toEqual(['q_proj', 'v_proj', 'down_proj']);
    expect(copy.tensors.size).toBe(2 * 3 * 2);
    const ollama = await exportRun({ run: run.runDir, format: 'ollama', ggufType: 'Q8_0' });
    expect(ollama.files).toEqual(['lora-q8_0.gguf', 'Modelfile']);
    expect(readFileSync(join(ollama.path, 'Modelfile'), 'utf8')).toBe('FROM ./lora-q8_0.gguf\nPARAMETER stop <|eos|>\n');
  });

  it('refuses a run that has not finished', async () => {
    await expect(exportRun({ run: join(tmpdir(), 'no-such-run'), format: 'hf' })).rejects.toThrow('no final/ yet');
  });
});

describe('exporting a LoRA run on a Gemma 2 base with a SentencePiece vocabulary', () => {
  const folder = resolve(import.meta.dirname, '../fixtures/sentencepiece/gemma');
  const gemmaBase: Base = {
    config: { ...TINY_GEMMA2, embeddingScale: Math.sqrt(32), queryPreAttnScalar: 8, slidingWindow: 16 },
    tokenizerJson: readFileSync(join(folder, 'tokenizer.json'), 'utf8'),
    tokenizerConfig: JSON.parse(readFileSync(join(folder, 'tokenizer_config.json'), 'utf8')),
    vocabSize: 420,
  };

  it('gguf: llama.cpp reads the SentencePiece vocabulary and scores the merged model as base + adapter', async () => {
    const run = await trainLora(mkdtempSync(join(tmpdir(), 'export-gemma-')), gemmaBase);
    const { model, tokenizer } = await loadModel(run.base);
    const saved = await readPeftAdapter(join(run.runDir, 'final'));
    const adapter = LoraAdapter.fromPeftTensors(model, saved.config, saved.tensors);
    const tokens = tokenizer!.encode('Once upon a time there was a fox', { addSpecialTokens: true });
    const input = tf.tensor2d([tokens], [1, tokens.length], 'int32');
    const expected = (tf.softmax(model.forward(input, undefined, adapter.wrap(model))).arraySync() as number[][][])[0];
    const f32 = await exportRun({ run: run.runDir, format: 'gguf', ggufType: 'F32' });
    const path = join(f32.path, f32.files[0]);
    const file = await GgufFile.open(path);
    expect([file.metadata.getString('general.architecture'), file.metadata.getString('tokenizer.ggml.model')]).toEqual(['gemma2', 'llama']);
    await file.close();
    const cpp = await llamaCppProbabilities(path, tokens, 420);
    await disposeLlamaCpp();
    // GeGLU: llama.cpp's F16 gelu table (see llama-cpp.test.ts)
    expect(Math.max(...cpp.flatMap((row, t) => row.map((p, j) => Math.abs(p - expected[t][j]))))).toBeLessThan(1e-4);
    const ollama = await exportRun({ run: run.runDir, format: 'ollama', ggufType: 'Q8_0' });
    expect(ollama.files).toEqual(['lora-q8_0.gguf', 'Modelfile']);
    model.dispose();
  });
});
