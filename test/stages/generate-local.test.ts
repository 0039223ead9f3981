import * as tf from '@tensorflow/tfjs-core';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { readExampleShard, type ExampleRow } from '../../src/formats/arrow-examples.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { scoreTokens } from '../../src/model/score.ts';
import { parseRecipe, type Recipe } from '../../src/recipe/index.ts';
import { generateStage } from '../../src/stages/generate-stage.ts';
import { runPathsAt } from '../../src/run/layout.ts';
import { readMetrics } from '../../src/run/metrics.ts';
import { silentLogger } from '../../src/util/progress.ts';
import { runRecipe } from '../../src/stages/run-recipe.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';

const K = 5;

/** A small random byte-level model saved as a Hugging Face folder: a local teacher with the student's tokenizer. */
async function writeTeacher(dir: string): Promise<{ path: string; model: CausalLM }> {
  const tokenizer = createByteLevelTokenizer();
  const config = resolveModelConfig({
    vocabSize: tokenizer.vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2,
    bosTokenId: tokenizer.bosId, eosTokenId: tokenizer.eosId,
  });
  const model = CausalLM.init(config, { seed: 11, std: 0.2 });
  const path = join(dir, 'teacher');
  await writeHfModelDir(path, { config, tensors: model.hfTensors(), dtype: 'F32', tokenizerJson: tokenizer.toJSON() });
  return { path, model };
}

function recipe(dir: string, generate: string, student = ''): Recipe {
  const yaml = `
name: local
backend: wasm
output_dir: runs
teacher:
  provider: local
  model: teacher
generate:
${generate}
  k: ${K}
  filters: { min_chars: 0, drop_truncated: false }
student:
  type: scratch
${student}
  architecture: { hidden_size: 16, intermediate_size: 32, num_layers: 1, num_heads: 2 }
data:
  seq_len: 32
  validation: { fraction: 0.25 }
train:
  max_steps: 2
  batch_size: 2
  eval_every: 1
  eval_batches: 1
`;
  return parseRecipe(yaml, join(dir, 'recipe.yaml'), dir);
}

async function rowsOf(shards: string[]): Promise<ExampleRow[]> {
  return (await Promise.all(shards.map(readExampleShard))).flatMap((shard) => shard.rows);
}

/** Each response token's stored top-k equals the teacher's softmax over the whole sequence, recomputed. */
async function expectTeacherSoftmax(model: CausalLM, row: ExampleRow, teacherPromptIds: number[]): Promise<void> {
  const ids = [...teacherPromptIds, ...row.responseIds];
  const scores = await scoreTokens(model, ids, K);
  row.responseIds.forEach((_, t) => {
    const expected = scores.topK[teacherPromptIds.length + t]!;
    expect([...row.softLabels!.ids.subarray(t * K, (t + 1) * K)]).toEqual(expected.map((e) => e.id));
    const stored = row.softLabels!.logprobs.subarray(t * K, (t + 1) * K);
    expected.forEach((e, j) => expect(stored[j]).toBeCloseTo(e.logprob, 4));
  });
}

describe('generate stage with the local teacher', () => {
  let dir: string;
  let teacher: { path: string; model: CausalLM };
  beforeAll(async () => {
    await initBackend('wasm');
    dir = mkdtempSync(join(tmpdir(), 'slm-generate-local-'));
    teacher = await writeTeacher(dir);
  });

  it('stores, for every sampled token, the teacher model\'s own softmax top-k', async () => {
    const r = recipe(dir, '  prompts: [ab, "cd e", xyz]\n  samples_per_prompt: 2\n  temperature: 0.9\n  max_tokens: 6');
    const summary = await generateStage(r, runPathsAt(join(dir, 'runs/local')), silentLogger);
    expect(summary.teacher.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(summary.k).toBe(K);
    const rows = await rowsOf(summary.shards);
    expect(rows.length).toBeGreaterThanOrEqual(3);
    const tokenizer = createByteLevelTokenizer();
    for (const row of rows) await expectTeacherSoftmax(teacher.model, row, [...row.promptIds]);
    expect([...rows[0].promptIds]).toEqual(tokenizer.encode('ab', { addSpecialTokens: true }));
  });

  it('finds every answer cached in a copy of the project elsewhere, and holds out the same examples', async () => {
    const generate = '  prompts: [ab, "cd e", xyz, pq, rs, tu, vw, "x y"]\n  max_tokens: 4';
    const first = await runRecipe(recipe(dir, generate), { logger: silentLogger, json: true, progressStream: { write: () => true }, only: ['generate', 'train'] });
    const moved = mkdtempSync(join(tmpdir(), 'slm-generate-moved-'));
    cpSync(dir, moved, { recursive: true });
    const again = await generateStage(recipe(moved, generate), runPathsAt(join(moved, 'runs/local')), silentLogger);
    expect(again.queried).toBe(0);
    expect(again.cached).toBe(8);
    const second = await runRecipe(recipe(moved, generate), { logger: silentLogger, json: true, progressStream: { write: () => true }, only: 'train' });
    const validation = (runDir: string) => readMetrics(join(runDir, 'metrics.jsonl')).map((m) => m.val_loss);
    expect(validation(second.runDir)).toEqual(validation(first.runDir));
  });

  it('labels given responses (label mode) with the teacher softmax, and trains a student on them', async () => {
    const data = join(dir, 'pairs.jsonl');
    const pairs = Array.from({ length: 8 }, (_, i) => ({ prompt: `q${i}`, response: `answer ${i * 7}` }));
    writeFileSync(data, pairs.map((pair) => JSON.stringify(pair)).join('\n'));
    const r = { ...recipe(dir, '  mode: label\n  prompts: pairs.jsonl'), name: 'label' };
    const result = await runRecipe(r, { logger: silentLogger, json: true, progressStream: { write: () => true } });
    const rows = await rowsOf(result.generate!.shards);
    expect(rows).toHaveLength(8);
    const tokenizer = createByteLevelTokenizer();
    expect(tokenizer.decode([...rows[3].responseIds], { skipSpecialTokens: true })).toBe('answer 21');
    expect(rows[3].responseIds.at(-1)).toBe(tokenizer.eosId);
    for (const row of rows) await expectTeacherSoftmax(teacher.model, row, [...row.promptIds]);
    expect(result.train!.steps).toBe(2);
    expect(Number.isFinite(result.train!.finalLoss)).toBe(true);
    expect(tf.memory().numTensors).toBeLessThan(1000);
  });

  it('refuses to train a student whose tokenizer is not the one the soft labels index', async () => {
    // The byte-level tokenizer with one more added token: other ids, so the soft labels would mean other tokens.
    const json = JSON.parse(createByteLevelTokenizer().toJSON());
    json.added_tokens.push({ ...json.added_tokens.at(-1), id: 259, content: '<|extra|>' });
    writeFileSync(join(dir, 'other.json'), JSON.stringify(json, null, 2));
    const r = { ...recipe(dir, '  mode: label\n  prompts: pairs.jsonl', '  tokenizer: other.json'), name: 'label' };
    await expect(runRecipe(r, { logger: silentLogger, json: true, progressStream: { write: () => true }, only: 'train' })).rejects.toThrow(
      /tokenizer_hash .* does not match the student's tokenizer/,
    );
  });
});
