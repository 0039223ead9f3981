/**
 * The model, LoRA and the training loop on webgpu against independent references: the PyTorch fixtures'
 * logits, and wasm's losses for the same runs. Tiny shapes: lavapipe computes at about 1 GFLOP/s.
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { loadModelDir } from '../../src/model-files/load.ts';
import { parseRecipe } from '../../src/recipe/index.ts';
import { readMetrics } from '../../src/run/metrics.ts';
import { generateTokens } from '../../src/model/generate.ts';
import { Rng } from '../../src/util/rng.ts';
import { chunkedFullDistillLoss, headTensorRows } from '../../trainers/losses/chunked-distill.ts';
import { teacherRowsDistill } from '../../trainers/losses/teacher-rows-distill.ts';
import { topKDistill } from '../../trainers/losses/distill.ts';
import { silentLogger } from '../../src/util/progress.ts';
import { runRecipe } from '../../src/stages/run-recipe.ts';
import { BYTE_LEVEL_TOKENIZER_CONFIG, createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { webgpuOrSkip } from './webgpu-backend.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/hf');
const STORIES = resolve(import.meta.dirname, '../../datasets/data/stories-small.jsonl');
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
    writeFileSync(join(dir, 'capitals.jsonl'), `${JSON.stringify({ country: 'Italy', capital: 'Rome' })}\n${JSON.stringify({ country: 'Peru', capital: 'Lima' })}\n`);
    writeFileSync(join(dir, 'capitals.yaml'), 'name: capitals\ndata: capitals.jsonl\nprompt: "Capital of {{country}}:"\ntarget_field: capital\ngenerate:\n  max_tokens: 3\n  stop: ["\\n"]\n');
    const common = `data:\n  train: ${STORIES}\n  seq_len: 16\ntrain:\n  max_steps: 3\n  batch_size: 2\n  lr: 3.0e-3\n  warmup_steps: 1\n  eval_every: 3\n  checkpoint_every: 3\n`;
    const scratch = (backend: string) =>
      `name: scratch-${backend}\nbackend: ${backend}\noutput_dir: runs\nstudent:\n  type: scratch\n  tokenizer: byte\n  architecture: { hidden_size: 16, intermediate_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1 }\n${common}`;
    const lora = (backend: string) =>
      `name: lora-${backend}\nbackend: ${backend}\noutput_dir: runs\nstudent:\n  type: lora\n  base: ${join(dir, 'base')}\n  rank: 2\n  alpha: 4\n  targets: all-linear\neval:\n  targets: [student]\n  suites:\n    - { suite: custom, path: ${join(dir, 'capitals.yaml')} }\nexport:\n  formats: [peft, hf]\n${common}`;
    for (const recipe of [scratch, lora]) {
      const onWasm = await losses(dir, recipe('wasm'));
      const onWebgpu = await losses(dir, recipe('webgpu'));
      expect(onWebgpu).toHaveLength(3);
      if (recipe === lora) {
        // Evaluated on webgpu (the adapter merged into the base), exported on wasm.
        expect(JSON.parse(readFileSync(join(dir, 'runs/lora-webgpu/eval/capitals.json'), 'utf8'))['slm-train']).toMatchObject({ n: 2 });
        expect(existsSync(join(dir, 'runs/lora-webgpu/export/hf/model.safetensors'))).toBe(true);
      }
      onWebgpu.forEach((loss, step) => expect(Math.abs(loss - onWasm[step]), `${recipe.name} step ${step + 1}: ${loss} vs ${onWasm[step]}`).toBeLessThan(1e-3));
    }
  });

  it('computes the distillation losses and their gradients as the cpu backend does, and samples the same tokens', async () => {
    const rng = new Rng(3);
    const values = (n: number, scale = 1) => Array.from({ length: n }, () => rng.normal() * scale);
    const [N, H, V, k] = [6, 8, 13, 4];
    const host = {
      studentHidden: values(N * H), studentHead: values(H * V), teacherHidden: values(N * H), teacherHead: values(H * V),
      logits: values(N * V, 2), ids: Array.from({ length: N * k }, (_, i) => (i * 5) % V), logprobs: values(N * k).map((v) => -Math.abs(v) - 0.5),
    };
    const run = async () => {
      const input = {
        studentHidden: tf.tensor2d(host.studentHidden, [N, H]), studentHead: tf.tensor2d(host.studentHead, [H, V]),
        teacherHidden: tf.tensor2d(host.teacherHidden, [N, H]), teacherHead: tf.tensor2d(host.teacherHead, [H, V]), mask: tf.tensor1d([1, 1, 0, 1, 1, 1]),
      };
      const heads = { studentHead: headTensorRows(input.studentHead), teacherHead: headTensorRows(input.teacherHead) };
      const chunked = tf.grad((hidden) => chunkedFullDistillLoss({ ...input, ...heads, studentHidden: hidden as tf.Tensor2D }, { divergence: 'jsd', beta: 0.5, temperature: 2, rowChunk: 4, vocabChunk: 5 }).loss)(input.studentHidden);
      const teacher = { hidden: input.teacherHidden, logits: (rows: tf.Tensor2D) => tf.matMul(rows, input.teacherHead) as tf.Tensor2D };
      const rows = tf.grad((l) => teacherRowsDistill(l as tf.Tensor2D, teacher, input.mask, { divergence: 'reverse_kl', beta: 0, temperature: 2, rowChunk: 4 }).loss)(tf.matMul(input.studentHidden, input.studentHead));
      const ids = tf.tensor2d(host.ids, [N, k], 'int32');
      const logprobs = tf.tensor2d(host.logprobs, [N, k]);
      const topK = tf.grad((l) => tf.sum(topKDistill(l as tf.Tensor2D, ids, logprobs, { divergence: 'forward_kl', beta: 0, temperature: 1, tail: 'bucket' })))(tf.tensor2d(host.logits, [N, V]));
      return Promise.all([chunked, rows, topK].map(async (t) => Array.from(await t.data())));
    };
    const sample = async () => {
      const model = CausalLM.init(resolveModelConfig({ vocabSize: 40, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2 }), { seed: 2, std: 0.3 });
      const ids: number[] = [];
      for await (const id of generateTokens(model, [1, 2, 3], { maxTokens: 8, seed: 5, temperature: 0.8, topK: 10, topP: 0.95 })) ids.push(id);
      model.dispose();
      return ids;
    };
    await initBackend('cpu');
    const [expected, expectedIds] = [await run(), await sample()];
    await initBackend('webgpu');
    const [actual, actualIds] = [await run(), await sample()];
    actual.forEach((grad, i) => grad.forEach((v, j) => expect(Math.abs(v - expected[i][j]), `gradient ${i}[${j}]`).toBeLessThan(1e-5 + 1e-4 * Math.abs(expected[i][j]))));
    expect(actualIds).toEqual(expectedIds);
  });
});
