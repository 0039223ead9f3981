import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { SafetensorsFile } from '../../src/formats/safetensors.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { loadModelDir } from '../../src/model-files/load.ts';
import { parseRecipe } from '../../src/recipe/index.ts';
import { readMetrics } from '../../src/run/metrics.ts';
import { silentLogger } from '../../src/util/progress.ts';
import { runRecipe } from '../../src/stages/run-recipe.ts';
import type { TrainHooks } from '../../src/stages/train-stage.ts';
import { tokenizerFromJson } from '../../src/tokenizer/hf-tokenizer.ts';
import { chatmlTokenizerJson } from '../helpers/chatml-tokenizer.ts';

await initBackend('wasm');

const STORIES = resolve(import.meta.dirname, '../../datasets/data/stories-small.jsonl');
const CHAT_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}";

/** A small pretrained-looking base with ChatML special tokens and a chat template in its tokenizer_config.json. */
async function writeBase(dir: string): Promise<string> {
  const tokenizerJson = chatmlTokenizerJson();
  const config = resolveModelConfig({ vocabSize: tokenizerFromJson(tokenizerJson).vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 64 });
  const model = CausalLM.init(config, { seed: 1, std: 0.1 });
  const base = join(dir, 'base');
  await writeHfModelDir(base, { config, tensors: model.hfTensors(), dtype: 'F32', tokenizerJson, tokenizerConfig: { eos_token: '<|im_end|>', chat_template: CHAT_TEMPLATE } });
  model.dispose();
  return base;
}

async function run(dir: string, base: string, hooks?: TrainHooks) {
  const yaml = `name: full
backend: wasm
output_dir: runs
student:
  type: full
  base: ${base}
data:
  train: ${STORIES}
  seq_len: 32
train:
  max_steps: 8
  batch_size: 4
  lr: 3.0e-3
  warmup_steps: 1
  eval_every: 4
  checkpoint_every: 3
`;
  return runRecipe(parseRecipe(yaml, join(dir, 'recipe.yaml'), dir), { logger: silentLogger, json: true, progressStream: { write: () => true }, hooks });
}

async function weights(dir: string): Promise<Map<string, Float32Array>> {
  const file = await SafetensorsFile.open(join(dir, 'model.safetensors'));
  const out = new Map<string, Float32Array>();
  for (const name of file.names()) out.set(name, await file.read(name));
  await file.close();
  return out;
}

describe('full fine-tuning of a pretrained model (student.type full)', () => {
  it('trains every weight from the base\'s, leaves the base untouched and writes final/ with the base\'s tokenizer files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'full-'));
    const base = await writeBase(dir);
    const baseBytes = readFileSync(join(base, 'model.safetensors'));
    const result = await run(dir, base);

    const losses = readMetrics(join(result.runDir, 'metrics.jsonl')).map((m) => m.loss as number);
    expect(Math.max(...losses.slice(-2))).toBeLessThan(Math.min(...losses.slice(0, 2)));
    expect(readFileSync(join(base, 'model.safetensors')).equals(baseBytes)).toBe(true);
    const [before, after] = [await weights(base), await weights(result.train!.finalDir)];
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [name, values] of before) expect(after.get(name)!.some((v, i) => v !== values[i]), name).toBe(true);

    const { tokenizer, chatTemplate } = await loadModelDir(result.train!.finalDir);
    expect(tokenizer!.vocabSize).toBe(261);
    expect(chatTemplate).toBe(CHAT_TEMPLATE);
    expect(readFileSync(join(result.train!.finalDir, 'tokenizer.json'), 'utf8')).toBe(readFileSync(join(base, 'tokenizer.json'), 'utf8'));
  });

  it('resumes to the same weights as an uninterrupted run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'full-'));
    const base = await writeBase(dir);
    const a = await run(join(dir, 'a'), base);
    const crash: TrainHooks = {
      afterStep: ({ step }) => {
        if (step === 5) throw new Error('simulated crash');
      },
    };
    await expect(run(join(dir, 'b'), base, crash)).rejects.toThrow('simulated crash');
    const b = await run(join(dir, 'b'), base);
    expect(b.train!.resumedFromStep).toBe(3);
    expect(readFileSync(join(b.train!.finalDir, 'model.safetensors')).equals(readFileSync(join(a.train!.finalDir, 'model.safetensors')))).toBe(true);
  });
});
