/**
 * The model, LoRA and the training loop on webgpu against independent references: the PyTorch fixtures'
 * logits, and wasm's losses for the same runs. Tiny shapes: lavapipe computes at about 1 GFLOP/s.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { writeHfModelDir } from '../../src/formats/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { loadModelDir } from '../../src/model/load.ts';
import { parseRecipe } from '../../src/recipe/index.ts';
import { readMetrics } from '../../src/run/metrics.ts';
import { silentLogger } from '../../src/run/progress.ts';
import { runRecipe } from '../../src/run/run-recipe.ts';
import { BYTE_LEVEL_TOKENIZER_CONFIG, createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { webgpuOrSkip } from './webgpu-backend.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/hf');
const STORIES = resolve(import.meta.dirname, '../../datasets/stories-small.jsonl');
const available = await webgpuOrSkip();

/** Row-wise log-softmax in float64. */
function logSoftmax(rows: number[][]): number[][] {
  return rows.map((row) => {
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((sum, v) => sum + Math.exp(v - max), 0)) + max;
    return row.map((v) => v - logSum);
  });
}

async function losses(dir: string, yaml: string): Promise<number[]> {
  const result = await runRecipe(parseRecipe(yaml, join(dir, 'recipe.yaml'), dir), { logger: silentLogger, json: true, progressStream: { write: () => true } });
  return readMetrics(join(result.runDir, 'metrics.jsonl')).map((m) => m.loss as number);
}

describe.skipIf(!available)('on webgpu', () => {
  it.each(['tiny-llama', 'tiny-qwen2', 'tiny-qwen3'])('%s: log-probabilities of the PyTorch reference within 5e-3 nats', async (name) => {
    await initBackend('webgpu');
    const expected = JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8')) as { input_ids: number[]; logits: number[][] };
    const { model } = await loadModelDir(join(FIXTURES, name));
    const logits = model.forward(tf.tensor2d(expected.input_ids, [1, expected.input_ids.length], 'int32'));
    const ours = logSoftmax(((await logits.array()) as number[][][])[0]);
    const reference = logSoftmax(expected.logits);
    const worst = Math.max(...ours.flatMap((row, i) => row.map((v, j) => Math.abs(v - reference[i][j]))));
    expect(worst).toBeLessThan(5e-3);
    logits.dispose();
    model.dispose();
  });

  it('trains a scratch student and a LoRA adapter to wasm\'s losses within 1e-3', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-webgpu-'));
    const tokenizer = createByteLevelTokenizer();
    await initBackend('wasm');
    const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1, maxPositionEmbeddings: 64 });
    const model = CausalLM.init(config, { seed: 1, std: 0.1 });
    await writeHfModelDir(join(dir, 'base'), { config, tensors: model.hfTensors(), dtype: 'F32', tokenizerJson: tokenizer.toJSON(), tokenizerConfig: BYTE_LEVEL_TOKENIZER_CONFIG });
    model.dispose();
    const common = `data:\n  train: ${STORIES}\n  seq_len: 16\ntrain:\n  max_steps: 3\n  batch_size: 2\n  lr: 3.0e-3\n  warmup_steps: 1\n  eval_every: 3\n  checkpoint_every: 3\n`;
    const scratch = (backend: string) =>
      `name: scratch-${backend}\nbackend: ${backend}\noutput_dir: runs\nstudent:\n  type: scratch\n  tokenizer: byte\n  architecture: { hidden_size: 16, intermediate_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1 }\n${common}`;
    const lora = (backend: string) =>
      `name: lora-${backend}\nbackend: ${backend}\noutput_dir: runs\nstudent:\n  type: lora\n  base: ${join(dir, 'base')}\n  rank: 2\n  alpha: 4\n  targets: all-linear\n${common}`;
    for (const recipe of [scratch, lora]) {
      const onWasm = await losses(dir, recipe('wasm'));
      const onWebgpu = await losses(dir, recipe('webgpu'));
      expect(onWebgpu).toHaveLength(3);
      onWebgpu.forEach((loss, step) => expect(Math.abs(loss - onWasm[step]), `${recipe.name} step ${step + 1}: ${loss} vs ${onWasm[step]}`).toBeLessThan(1e-3));
    }
  });
});
