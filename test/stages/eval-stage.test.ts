import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { parseRecipe } from '../../src/recipe/index.ts';
import { readMetrics } from '../../src/run/metrics.ts';
import { silentLogger } from '../../src/util/progress.ts';
import { runRecipe } from '../../src/stages/run-recipe.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';

const ARITH = resolve(import.meta.dirname, '../../datasets/data');
const quiet = { logger: silentLogger, json: true, progressStream: { write: () => true } };

const yaml = `
name: evaluated
backend: wasm
output_dir: runs
teacher: { provider: local, model: teacher }
student:
  type: scratch
  architecture: { hidden_size: 16, intermediate_size: 32, num_layers: 1, num_heads: 2 }
data:
  train: ${ARITH}/arith-train.jsonl
  prompt_template: "Question: {{question}}\\nAnswer:"
  response_template: " {{answer}}"
  seq_len: 256
train:
  max_steps: 4
  batch_size: 2
  eval_every: 4
  eval_batches: 1
eval:
  every: 2
  limit_during_training: 2
  targets: [student, teacher]
  suites:
    - { suite: gsm8k, data: ${ARITH}/arith-test.jsonl, style: zero-shot, limit: 3 }
`;

describe('the eval stage of a recipe', () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend('wasm');
    dir = mkdtempSync(join(tmpdir(), 'slm-eval-stage-'));
    const tokenizer = createByteLevelTokenizer();
    const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, bosTokenId: tokenizer.bosId, eosTokenId: tokenizer.eosId });
    await writeHfModelDir(join(dir, 'teacher'), { config, tensors: CausalLM.init(config, { seed: 2 }).hfTensors(), dtype: 'F32', tokenizerJson: tokenizer.toJSON() });
  });

  it('evaluates the student during and after training and the teacher beside it; a re-run answers from the cache', async () => {
    const recipe = parseRecipe(yaml, join(dir, 'recipe.yaml'), dir);
    const result = await runRecipe(recipe, quiet);
    const run = join(dir, 'runs/evaluated');
    expect(result.eval!.student![0]).toMatchObject({ suite: 'gsm8k_zeroshot', n: 3, cached: 0 });
    expect(result.eval!.teacher![0]).toMatchObject({ suite: 'gsm8k_zeroshot', n: 3 });
    expect(result.eval!.teacher![0].model.digest).not.toBe(result.eval!.student![0].model.digest);
    expect(existsSync(join(run, 'eval/gsm8k_zeroshot.json'))).toBe(true);
    expect(existsSync(join(run, 'eval/teacher/gsm8k_zeroshot.samples.jsonl'))).toBe(true);
    const during = JSON.parse(readFileSync(join(run, 'eval/steps/step-00000002/gsm8k_zeroshot.json'), 'utf8'))['slm-train'];
    expect(during.n).toBe(2);
    const metrics = readMetrics(join(run, 'metrics.jsonl'));
    expect(metrics[1].eval_gsm8k_zeroshot).toBe(during.metrics['exact_match,flexible-extract'].value);
    expect(metrics[0].eval_gsm8k_zeroshot).toBeUndefined();

    const again = await runRecipe(recipe, { ...quiet, only: 'eval' });
    expect(again.train).toBeUndefined();
    expect(again.eval!.student![0].cached).toBe(3);
    expect(again.eval!.student![0].metrics).toEqual(result.eval!.student![0].metrics);
  }, 120_000);

  it('decodes the generation suites with llama.cpp when eval.engine says so, to the same answers', async () => {
    const cppYaml = yaml
      .replace('output_dir: runs', 'output_dir: runs-llama-cpp')
      .replace('eval:\n', 'eval:\n  engine: llama.cpp\n')
      .replace('targets: [student, teacher]', 'targets: [teacher]');
    const recipe = parseRecipe(cppYaml, join(dir, 'recipe.yaml'), dir);
    expect(recipe.eval!.engine).toBe('llama.cpp');
    const result = await runRecipe(recipe, { ...quiet, only: 'eval' });
    expect(result.eval!.teacher![0]).toMatchObject({ suite: 'gsm8k_zeroshot', n: 3, cached: 0 });
    const responses = (root: string) =>
      readFileSync(join(dir, root, 'evaluated/eval/teacher/gsm8k_zeroshot.samples.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).resps);
    expect(responses('runs-llama-cpp')).toEqual(responses('runs'));
  }, 120_000);
});
