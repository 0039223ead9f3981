import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { generateTokens } from '../../src/model/generate.ts';
import { loadModelDir } from '../../src/model-files/load.ts';
import { parseRecipe } from '../../src/recipe/index.ts';
import { readMetrics } from '../../src/run/metrics.ts';
import { silentLogger } from '../../src/util/progress.ts';
import { runRecipe } from '../../src/stages/run-recipe.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';

const tokenizer = createByteLevelTokenizer();
const quiet = { logger: silentLogger, json: true, progressStream: { write: () => true } };
const TRAIN_PROMPTS = Array.from({ length: 120 }, (_, i) => `p${i}`);
const HELD_OUT_PROMPTS = ['q1', 'q2', 'x7', 'zz'];

/**
 * A teacher whose knowledge is a random bigram table with peaked rows: attention and MLP outputs are zeroed,
 * so its next-token distribution depends on the current token alone, through its own embedding and head.
 * A smaller student can learn that from the teacher's distributions, and it carries over to unseen prompts.
 */
async function writeTeacher(dir: string): Promise<CausalLM> {
  const config = resolveModelConfig({
    vocabSize: tokenizer.vocabSize, hiddenSize: 48, intermediateSize: 96, numLayers: 1, numHeads: 4, numKvHeads: 2,
    tieWordEmbeddings: false, bosTokenId: tokenizer.bosId, eosTokenId: tokenizer.eosId,
  });
  const model = CausalLM.init(config, { seed: 5, std: 0.4 });
  for (const name of ['model.layers.0.self_attn.o_proj.weight', 'model.layers.0.mlp.down_proj.weight']) {
    const weight = model.params.get(name)!;
    weight.assign(tf.zerosLike(weight));
  }
  await writeHfModelDir(join(dir, 'teacher'), { config, tensors: model.hfTensors(), dtype: 'F32', tokenizerJson: tokenizer.toJSON() });
  return model;
}

function recipeYaml(distill: string): string {
  return `
name: kd
seed: 1
backend: wasm
output_dir: runs
teacher: { provider: local, model: teacher }
generate:
  prompts: [${TRAIN_PROMPTS.join(', ')}]
  samples_per_prompt: 1
  temperature: 1
  max_tokens: 16
  k: 8
  filters: { min_chars: 0, drop_truncated: false }
student:
  type: scratch
  architecture: { hidden_size: 24, intermediate_size: 48, num_layers: 1, num_heads: 2 }
data:
  seq_len: 16
  validation: { fraction: 0.1 }
train:
  max_steps: 150
  batch_size: 8
  lr: 1.0e-2
  warmup_steps: 5
  eval_every: 50
  eval_batches: 2
  checkpoint_every: 150
  log_every: 10
${distill}
`;
}

/** Mean per-token KL(teacher || student) and top-1 agreement on the teacher's own continuations of held-out prompts. */
async function agreementWithTeacher(teacher: CausalLM, student: CausalLM): Promise<{ kl: number; top1: number }> {
  let kl = 0;
  let agree = 0;
  let positions = 0;
  for (const [i, prompt] of HELD_OUT_PROMPTS.entries()) {
    const ids = tokenizer.encode(prompt, { addSpecialTokens: true });
    for await (const id of generateTokens(teacher, ids, { maxTokens: 12, temperature: 1, topK: 0, topP: 1, seed: i })) ids.push(id);
    const start = tokenizer.encode(prompt, { addSpecialTokens: true }).length - 1;
    const [klSum, agreeSum] = tf.tidy(() => {
      // The positions that predict the continuation: what the student was trained on.
      const input = tf.tensor2d(ids, [1, ids.length], 'int32');
      const p = tf.slice(tf.logSoftmax(teacher.forward(input)), [0, start, 0], [1, ids.length - 1 - start, -1]);
      const q = tf.slice(tf.logSoftmax(student.forward(input)), [0, start, 0], [1, ids.length - 1 - start, -1]);
      const perPosition = tf.sum(tf.mul(tf.exp(p), tf.sub(p, q)), -1);
      const same = tf.cast(tf.equal(tf.argMax(p, -1), tf.argMax(q, -1)), 'float32');
      return [tf.sum(perPosition).dataSync()[0], tf.sum(same).dataSync()[0]];
    });
    kl += klSum;
    agree += agreeSum;
    positions += ids.length - 1 - start;
  }
  return { kl: kl / positions, top1: agree / positions };
}

describe('distilling a teacher into a smaller student', () => {
  let dir: string;
  let teacher: CausalLM;
  beforeAll(async () => {
    await initBackend('wasm');
    dir = mkdtempSync(join(tmpdir(), 'slm-distill-'));
    teacher = await writeTeacher(dir);
  });

  it('with stored top-k soft labels: the KL to the teacher falls and top-1 agreement rises on held-out prompts', async () => {
    const recipe = parseRecipe(recipeYaml('distill: { alpha: 0.9, temperature: 1 }'), join(dir, 'recipe.yaml'), dir);
    const result = await runRecipe(recipe, quiet);
    expect(result.train!.distillation.mode).toBe('stored');

    const config = (await loadModelDir(join(dir, 'runs/kd/final'))).model.config;
    const untrained = CausalLM.init(config, { seed: 1, std: 0.02 });
    const trained = (await loadModelDir(join(dir, 'runs/kd/final'))).model;
    const before = await agreementWithTeacher(teacher, untrained);
    const after = await agreementWithTeacher(teacher, trained);
    expect(after.kl).toBeLessThan(before.kl * 0.8);
    expect(after.top1).toBeGreaterThan(before.top1 + 0.1);

    const metrics = readMetrics(join(dir, 'runs/kd/metrics.jsonl')) as Record<string, number>[];
    const first = metrics[0];
    const last = metrics.at(-1)!;
    expect(last.kd).toBeLessThan(first.kd);
    expect(last.top1_agreement).toBeGreaterThan(first.top1_agreement);
    // The total is the mix of its parts: (1 - alpha) CE + alpha KD (T = 1).
    expect(last.loss).toBeCloseTo(0.1 * last.ce + 0.9 * last.kd, 4);
    expect(last.val_kd).toBeGreaterThan(0);
    untrained.dispose();
    trained.dispose();
  }, 120_000);

  it('resumes a distillation run with on-policy batches mid-epoch to the same losses', async () => {
    const yaml = recipeYaml('distill: { alpha: 0.5, on_policy: { lambda: 0.5, max_tokens: 6 } }')
      .replace('max_steps: 150', 'max_steps: 6')
      .replace('checkpoint_every: 150', 'checkpoint_every: 2')
      .replace('eval_every: 50', 'eval_every: 3');
    const uninterrupted = await runRecipe({ ...parseRecipe(yaml, join(dir, 'recipe.yaml'), dir), name: 'kd-whole' }, quiet);
    const recipe = { ...parseRecipe(yaml, join(dir, 'recipe.yaml'), dir), name: 'kd-resumed' };
    const crash = { afterStep: ({ step }: { step: number }) => { if (step === 5) throw new Error('simulated crash'); } };
    await expect(runRecipe(recipe, { ...quiet, hooks: crash })).rejects.toThrow('simulated crash');
    const resumed = await runRecipe(recipe, quiet);
    expect(resumed.train!.resumedFromStep).toBe(4);
    const a = readMetrics(join(uninterrupted.runDir, 'metrics.jsonl')) as Record<string, number>[];
    const b = readMetrics(join(resumed.runDir, 'metrics.jsonl')) as Record<string, number>[];
    expect(b.map((m) => m.step)).toEqual(a.map((m) => m.step));
    // Some steps are the student's own samples (KD only), some the stored data: both reproduce exactly.
    expect(a.some((m) => m.ce !== undefined && Math.abs(m.loss - m.kd) < 1e-6)).toBe(true);
    for (let i = 0; i < a.length; i++) {
      expect(b[i].loss).toBeCloseTo(a[i].loss, 5);
      expect(b[i].kd).toBeCloseTo(a[i].kd, 5);
    }
  }, 120_000);

  it('trains LoRA adapters by distillation, on a base that shares the teacher\'s tokenizer', async () => {
    const yaml = recipeYaml('distill: { alpha: 0.5 }')
      .replace(/student:\n  type: scratch\n  architecture: .*\n/, 'student: { type: lora, base: teacher, rank: 4, alpha: 8, targets: [q, v] }\n')
      .replace('max_steps: 150', 'max_steps: 6');
    const result = await runRecipe({ ...parseRecipe(yaml, join(dir, 'recipe.yaml'), dir), name: 'kd-lora' }, quiet);
    expect(result.train!.distillation.mode).toBe('stored');
    const metrics = readMetrics(join(dir, 'runs/kd-lora/metrics.jsonl')) as Record<string, number>[];
    expect(metrics).toHaveLength(6);
    // LoRA starts as the identity (B = 0): the student is the teacher, so the KL to its own top-k is ~0.
    expect(metrics[0].kd).toBeLessThan(0.05);
    expect(metrics[0].top1_agreement).toBe(1);
  }, 120_000);

  it('refuses online distillation from a teacher whose tokenizer is not the student\'s', async () => {
    const json = JSON.parse(tokenizer.toJSON());
    json.added_tokens.push({ ...json.added_tokens.at(-1), id: 259, content: '<|extra|>' });
    writeFileSync(join(dir, 'other.json'), JSON.stringify(json));
    const yaml = recipeYaml('distill: { labels: online }')
      .replace('  type: scratch\n', '  type: scratch\n  tokenizer: other.json\n')
      .replace(/generate:[\s\S]*?student:/, 'student:')
      .replace('  seq_len: 16\n', '  train: pairs.jsonl\n  seq_len: 16\n');
    writeFileSync(join(dir, 'pairs.jsonl'), '{"prompt": "a", "response": "b"}\n'.repeat(20));
    const recipe = { ...parseRecipe(yaml, join(dir, 'recipe.yaml'), dir), name: 'kd-mismatch' };
    await expect(runRecipe(recipe, quiet)).rejects.toThrow(/distill.labels online: the teacher .* different tokenizers/);
  });

  it('online: the teacher scores the student\'s own samples (on-policy batches) next to the stored data', async () => {
    const recipe = parseRecipe(
      recipeYaml('distill: { alpha: 0.5, labels: online, on_policy: { lambda: 0.5, max_tokens: 6 } }').replace('name: kd', 'name: kd-online').replace('max_steps: 60', 'max_steps: 6'),
      join(dir, 'recipe.yaml'),
      dir,
    );
    const result = await runRecipe(recipe, quiet);
    expect(result.train!.distillation.mode).toBe('online');
    const metrics = readMetrics(join(dir, 'runs/kd-online/metrics.jsonl')) as Record<string, number>[];
    expect(metrics.every((m) => Number.isFinite(m.kd) && m.kd >= 0)).toBe(true);
  }, 120_000);
});
