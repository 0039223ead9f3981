/**
 * score and generate take a LoRA run or its PEFT folder as they are: the adapter runs beside its base,
 * unmerged, and gives what the merged weights give.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { modelWorkload } from '../../src/cli/model-target.ts';
import { runProgram } from '../../src/cli/program.ts';
import { adaptedModelConfig } from '../../src/model-files/adapted-model.ts';
import { readHfConfig } from '../../src/model-files/hf-model-dir.ts';
import { readPeftAdapter } from '../../src/model-files/peft.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { generateTokens } from '../../src/model/generate.ts';
import { loadModelDir } from '../../src/model-files/load.ts';
import { LoraAdapter } from '../../src/model/lora.ts';
import { scoreTokens } from '../../src/model/score.ts';
import { parseRecipe } from '../../src/recipe/index.ts';
import { LocalTeacher } from '../../src/teachers/local.ts';
import { silentLogger } from '../../src/util/progress.ts';
import { runRecipe } from '../../src/stages/run-recipe.ts';
import { BYTE_LEVEL_TOKENIZER_CONFIG, createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';

const STORIES = resolve(import.meta.dirname, '../../datasets/data/stories-small.jsonl');
const dir = mkdtempSync(join(tmpdir(), 'slm-adapted-'));
const ids = [1, 79, 110, 99, 101, 32, 117, 112, 111, 110];
let run: string;

beforeAll(async () => {
  await initBackend('wasm');
  const tokenizer = createByteLevelTokenizer();
  const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, maxPositionEmbeddings: 64 });
  await writeHfModelDir(join(dir, 'base'), { config, tensors: CausalLM.init(config, { seed: 1, std: 0.1 }).hfTensors(), dtype: 'F32', tokenizerJson: tokenizer.toJSON(), tokenizerConfig: BYTE_LEVEL_TOKENIZER_CONFIG });
  const yaml = `name: adapted\nbackend: wasm\noutput_dir: runs\nstudent:\n  type: lora\n  base: ${join(dir, 'base')}\n  rank: 4\n  alpha: 8\n  targets: all-linear\ndata:\n  train: ${STORIES}\n  seq_len: 16\ntrain:\n  max_steps: 4\n  batch_size: 2\n  lr: 5.0e-2\n  warmup_steps: 1\n  eval_every: 4\n  checkpoint_every: 4\n`;
  run = (await runRecipe(parseRecipe(yaml, join(dir, 'recipe.yaml'), dir), { logger: silentLogger, json: true, progressStream: { write: () => true } })).runDir;
});

async function cli(argv: string[]): Promise<Record<string, unknown>> {
  let stdout = '';
  const code = await runProgram([...argv, '--backend', 'wasm', '--json'], { stdout: { write: (text: string) => ((stdout += text), true) }, stderr: { write: () => true } });
  expect(code).toBe(0);
  return JSON.parse(stdout);
}

/** The base with the trained adapter merged in: what a merged export would score. */
async function mergedScores(): Promise<(number | null)[]> {
  const { model } = await loadModelDir(join(dir, 'base'));
  const saved = await readPeftAdapter(join(run, 'final'));
  await LoraAdapter.fromPeftTensors(model, saved.config, saved.tensors).merge(model);
  const scores = await scoreTokens(model, ids, 0);
  model.dispose();
  return scores.logprobs;
}

describe('a LoRA run as --model, and as a teacher', () => {
  it('scores as the merged model does (1e-5), and not as the base', async () => {
    const merged = await mergedScores();
    const base = (await cli(['score', '--model', join(dir, 'base'), '--ids', ids.join(',')])).logprobs as number[];
    for (const model of [run, join(run, 'final')]) {
      const scored = (await cli(['score', '--model', model, '--ids', ids.join(',')])).logprobs as (number | null)[];
      scored.slice(1).forEach((logprob, i) => expect(Math.abs(logprob! - merged[i + 1]!)).toBeLessThan(1e-5));
    }
    expect(Math.max(...base.slice(1).map((logprob, i) => Math.abs(logprob - merged[i + 1]!)))).toBeGreaterThan(1e-3);
  });

  it('generates from the run folder what the merged model generates', async () => {
    const out = await cli(['generate', '--model', run, '--prompt', 'Once', '--max-tokens', '6']);
    const { model, tokenizer } = await loadModelDir(join(dir, 'base'));
    const saved = await readPeftAdapter(join(run, 'final'));
    await LoraAdapter.fromPeftTensors(model, saved.config, saved.tensors).merge(model);
    const merged: number[] = [];
    for await (const id of generateTokens(model, tokenizer!.encode('Once', { addSpecialTokens: true }), { maxTokens: 6, seed: 0, temperature: 0, topK: 0, topP: 1 })) merged.push(id);
    model.dispose();
    expect(out.ids).toEqual(merged);
  });

  it("reads its base's config from headers, which sets the decoding threads: a model this narrow decodes as a stream of small products", async () => {
    const base = await readHfConfig(join(dir, 'base'));
    for (const ref of [run, join(run, 'final'), join(dir, 'base')]) expect(await adaptedModelConfig(ref)).toEqual(base.config);
    expect(await modelWorkload(run, 'decoding')).toBe('decoding');
    expect(await modelWorkload(run, 'training')).toBe('training');
  });

  it('teaches as a local teacher: its scores are the merged model\'s', async () => {
    const teacher = await LocalTeacher.load(run);
    const scored = await teacher.scoreIds(ids, 3);
    const merged = await mergedScores();
    scored.slice(1).forEach((token, i) => expect(Math.abs(token.logprob - merged[i + 1]!)).toBeLessThan(1e-5));
    teacher.dispose();
  });
});
