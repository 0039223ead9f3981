import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { loadModelDir } from '../../src/model-files/load.ts';
import { scoreTokens } from '../../src/model/score.ts';
import { parseRecipe } from '../../src/recipe/index.ts';
import { readMetrics } from '../../src/run/metrics.ts';
import { silentLogger } from '../../src/util/progress.ts';
import { runRecipe } from '../../src/stages/run-recipe.ts';
import type { TrainHooks } from '../../src/stages/train-stage.ts';
import { BYTE_LEVEL_TOKENIZER_CONFIG, createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { Rng } from '../../src/util/rng.ts';
import { readPreferencePairs } from '../../datasets/preference-pairs.ts';
import { chatmlTokenizerJson } from '../helpers/chatml-tokenizer.ts';

await initBackend('wasm');

/**
 * A preference nothing but the pairs teach: after any prompt of three letters, an answer of three vowels is
 * preferred to one of three consonants. Held-out pairs have prompts and answers of their own draw.
 */
function writePairs(dir: string, name: string, count: number, seed: number): string {
  const rng = new Rng(seed);
  const pick = (letters: string, n: number) => Array.from({ length: n }, () => letters[rng.int(letters.length)]).join('');
  const lines = Array.from({ length: count }, () =>
    JSON.stringify({ prompt: `${pick('abcdefghijklmnopqrstuvwxyz', 3)}:`, chosen: ` ${pick('aeiou', 3)}`, rejected: ` ${pick('bcdfghjklmnpqrstvwxz', 3)}` }),
  );
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

function recipeYaml(dir: string, student: string, extra = ''): string {
  return `name: dpo
backend: wasm
seed: 1
output_dir: runs
student:
${student}
data:
  train: ${writePairs(dir, 'pairs.jsonl', 400, 1)}
  validation: { path: ${writePairs(dir, 'held-out.jsonl', 100, 2)} }
  seq_len: 16
train:
  objective: dpo
  max_steps: 30
  batch_size: 8
  lr: 1.0e-2
  warmup_steps: 2
  eval_every: 10
  eval_batches: 13
  checkpoint_every: 4
dpo:
  beta: 0.5
${extra}`;
}

const SCRATCH = `  type: scratch
  architecture: { hidden_size: 32, intermediate_size: 64, num_layers: 2, num_heads: 4, num_kv_heads: 2, max_position_embeddings: 32 }`;

/** Runs the recipe; what the run prints (its progress stream, where the stages log) goes into `lines`. */
async function run(dir: string, yaml: string, hooks?: TrainHooks, lines: string[] = []) {
  const recipe = parseRecipe(yaml, join(dir, 'recipe.yaml'), dir);
  const progressStream = { write: (text: string) => lines.push(...text.split('\n').filter((line) => line.length > 0)) };
  return runRecipe(recipe, { logger: silentLogger, json: false, progressStream, hooks });
}

describe('DPO on a scratch student', () => {
  it('learns to prefer the chosen answers of held-out pairs, and logs TRL\'s metrics per step and at validation', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-'));
    const lines: string[] = [];
    const result = await run(dir, recipeYaml(dir, SCRATCH), undefined, lines);
    const metrics = readMetrics(join(result.runDir, 'metrics.jsonl'));
    expect(metrics).toHaveLength(30);
    // The reference pass reports its progress by tenths: 800 training sequences (400 pairs) in 50 batches of 16.
    const progress = lines.filter((line) => line.startsWith('reference log-probabilities of the train pairs:'));
    expect(progress).toHaveLength(10);
    expect(progress.at(-1)).toBe('reference log-probabilities of the train pairs: 800/800 sequences');
    for (const name of ['rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies', 'logps/chosen', 'logps/rejected']) {
      expect(metrics.every((m) => typeof m[name] === 'number'), name).toBe(true);
      expect(typeof metrics[29][`val_${name}`], `val_${name}`).toBe('number');
    }
    // The policy starts as its reference: the first step's rewards are zero and its loss log 2.
    expect(metrics[0]['rewards/margins']).toBeCloseTo(0, 5);
    expect(metrics[0].loss).toBeCloseTo(Math.log(2), 4);
    const last = metrics[29];
    const heldOut = 100;
    const accuracy = last['val_rewards/accuracies'] as number;
    const standardError = Math.sqrt((accuracy * (1 - accuracy)) / heldOut) || 1 / heldOut;
    expect(accuracy).toBeGreaterThan(0.9);
    expect((accuracy - 0.5) / standardError).toBeGreaterThan(5);
    expect(last['val_rewards/margins']).toBeGreaterThan(0);
    expect(last.val_loss).toBeLessThan(Math.log(2));
    expect(last.val_pairs).toBe(heldOut);
    // The report gives the held-out reward accuracy with its standard error, and charts the rewards.
    const report = readFileSync(join(result.runDir, 'report.md'), 'utf8');
    const line = report.match(/the chosen answer has the higher reward in ([\d.]+)% ± ([\d.]+)% of 100 held-out pairs \(step 30;/);
    expect(line).not.toBeNull();
    expect(Number(line![1])).toBeCloseTo(accuracy * 100, 2);
    expect(Number(line![2])).toBeCloseTo(Math.sqrt((accuracy * (1 - accuracy)) / heldOut) * 100, 2);
    expect(report).toContain('report-charts/reward-accuracy.svg');
  });

  it('resumes after a crash to the same losses and metrics, reading the reference log-probabilities back', async () => {
    const dirA = mkdtempSync(join(tmpdir(), 'dpo-a-'));
    const uninterrupted = await run(dirA, recipeYaml(dirA, SCRATCH));
    const dirB = mkdtempSync(join(tmpdir(), 'dpo-b-'));
    const crash: TrainHooks = {
      afterStep: ({ step }) => {
        if (step === 10) throw new Error('simulated crash');
      },
    };
    await expect(run(dirB, recipeYaml(dirB, SCRATCH), crash)).rejects.toThrow('simulated crash');
    const cache = join(dirB, 'runs', 'dpo', 'reference-logps.json');
    const written = statSync(cache).mtimeMs;
    const lines: string[] = [];
    const resumed = await run(dirB, recipeYaml(dirB, SCRATCH), undefined, lines);
    expect(resumed.train!.resumedFromStep).toBe(8);
    expect(lines.filter((line) => line.startsWith('reference log-probabilities'))).toEqual([
      `reference log-probabilities of the train pairs: read from ${cache}`,
      `reference log-probabilities of the validation pairs: read from ${cache}`,
    ]);
    expect(statSync(cache).mtimeMs).toBe(written);
    const a = readMetrics(join(uninterrupted.runDir, 'metrics.jsonl'));
    const b = readMetrics(join(resumed.runDir, 'metrics.jsonl'));
    expect(b.map((m) => m.step)).toEqual(a.map((m) => m.step));
    b.forEach((m, i) => {
      expect(m.loss).toBe(a[i].loss);
      expect(m['rewards/accuracies']).toBe(a[i]['rewards/accuracies']);
    });
    expect(readFileSync(join(resumed.train!.finalDir, 'model.safetensors')).equals(readFileSync(join(uninterrupted.train!.finalDir, 'model.safetensors')))).toBe(true);
  });
});

/** A random byte-level model saved as a Hugging Face folder (with another tokenizer's JSON when given). */
async function writeModel(dir: string, name: string, tokenizerJson = createByteLevelTokenizer().toJSON()): Promise<string> {
  const vocabSize = JSON.parse(tokenizerJson).added_tokens.length + 256;
  const config = resolveModelConfig({ vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 64 });
  const model = CausalLM.init(config, { seed: 2, std: 0.1 });
  const path = join(dir, name);
  await writeHfModelDir(path, { config, tensors: model.hfTensors(), dtype: 'F32', tokenizerJson, tokenizerConfig: BYTE_LEVEL_TOKENIZER_CONFIG });
  model.dispose();
  return path;
}

/** The model's summed log-probability of each example's targets, scored token by token (score.ts): independent of training's path. */
async function scoredSums(modelDir: string, pairsFile: string, count: number): Promise<number[]> {
  const pairs = await readPreferencePairs(pairsFile, createByteLevelTokenizer());
  const { model } = await loadModelDir(modelDir);
  const sums: number[] = [];
  for (const pair of pairs.slice(0, count)) {
    for (const example of [pair.chosen, pair.rejected]) {
      const { logprobs } = await scoreTokens(model, example.ids);
      sums.push(example.lossMask.reduce((sum, m, t) => sum + (m ? logprobs[t]! : 0), 0));
    }
  }
  model.dispose();
  return sums;
}

describe('a named reference model', () => {
  it('scores the pairs once, before training, with its own weights', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-reference-'));
    const reference = await writeModel(dir, 'reference');
    const result = await run(dir, recipeYaml(dir, SCRATCH, `  reference: ${reference}\n`).replace('max_steps: 30', 'max_steps: 2'));
    const cached = JSON.parse(readFileSync(join(result.runDir, 'reference-logps.json'), 'utf8')).parts.validation.logps as number[];
    const expected = await scoredSums(reference, join(dir, 'held-out.jsonl'), 3);
    expected.forEach((value, i) => expect(cached[i]).toBeCloseTo(value, 4));
  });

  it('is refused when its tokenizer is not the student\'s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-reference-'));
    const reference = await writeModel(dir, 'chatml', chatmlTokenizerJson());
    await expect(run(dir, recipeYaml(dir, SCRATCH, `  reference: ${reference}\n`))).rejects.toThrow(`dpo.reference: ${reference} does not share the student's tokenizer`);
  });
});

describe('DPO on a pretrained student', () => {
  it.each([
    ['LoRA: the base without its adapter', 'lora\n  base: BASE\n  rank: 4\n  alpha: 8\n  dropout: 0.1\n  targets: all-linear'],
    ['full fine-tuning: the base as loaded', 'full\n  base: BASE'],
  ])('%s is the reference: the cached log-probabilities are the base\'s own scores', async (_, student) => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-pretrained-'));
    const base = await writeModel(dir, 'base');
    const result = await run(dir, recipeYaml(dir, `  type: ${student.replace('BASE', base)}`).replace('max_steps: 30', 'max_steps: 4'));
    const metrics = readMetrics(join(result.runDir, 'metrics.jsonl'));
    expect(metrics).toHaveLength(4);
    expect(metrics[3]['rewards/margins']).not.toBe(0);

    const cached = JSON.parse(readFileSync(join(result.runDir, 'reference-logps.json'), 'utf8')).parts.validation.logps as number[];
    const expected = await scoredSums(base, join(dir, 'held-out.jsonl'), 3);
    expected.forEach((value, i) => expect(cached[i]).toBeCloseTo(value, 4));
  });
});
