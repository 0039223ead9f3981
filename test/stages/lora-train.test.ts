import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { readPeftAdapter } from '../../src/model-files/peft.ts';
import { SafetensorsFile } from '../../src/formats/safetensors.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { parseRecipe } from '../../src/recipe/index.ts';
import { readMetrics } from '../../src/run/metrics.ts';
import { silentLogger } from '../../src/util/progress.ts';
import { runRecipe } from '../../src/stages/run-recipe.ts';
import type { TrainHooks } from '../../src/stages/train-stage.ts';
import { BYTE_LEVEL_TOKENIZER_CONFIG, createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';

await initBackend('wasm');

const STORIES = resolve(import.meta.dirname, '../../datasets/data/stories-small.jsonl');

/** A small pretrained-looking base: a random byte-level model saved as a Hugging Face folder. */
async function writeBase(dir: string): Promise<string> {
  const tokenizer = createByteLevelTokenizer();
  const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, tieWordEmbeddings: true, maxPositionEmbeddings: 64 });
  const model = CausalLM.init(config, { seed: 1, std: 0.1 });
  const base = join(dir, 'base');
  await writeHfModelDir(base, { config, tensors: model.hfTensors(), dtype: 'F32', tokenizerJson: tokenizer.toJSON(), tokenizerConfig: BYTE_LEVEL_TOKENIZER_CONFIG });
  model.dispose();
  return base;
}

async function run(dir: string, base: string, weights: string, hooks?: TrainHooks) {
  const yaml = `name: lora
backend: wasm
output_dir: runs
student:
  type: lora
  base: ${base}
  rank: 4
  alpha: 8
  dropout: 0.1
  targets: all-linear
  weights: ${weights}
data:
  train: ${STORIES}
  seq_len: 32
train:
  max_steps: 10
  batch_size: 4
  lr: 1.0e-2
  warmup_steps: 2
  eval_every: 5
  checkpoint_every: 4
`;
  const recipe = parseRecipe(yaml, join(dir, 'recipe.yaml'), dir);
  return runRecipe(recipe, { logger: silentLogger, json: true, progressStream: { write: () => true }, hooks });
}

async function tensorNames(path: string): Promise<string[]> {
  const file = await SafetensorsFile.open(path);
  const names = file.names();
  await file.close();
  return names;
}

// resident: the base as float32 variables; streamed: compact in host memory, every layer recomputed.
describe.each([['resident'], ['streamed']])('training LoRA adapters from a recipe (%s base)', (weights) => {
  it('lowers the loss, leaves the base untouched, checkpoints only adapters and writes a PEFT folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lora-'));
    const base = await writeBase(dir);
    const baseBytes = readFileSync(join(base, 'model.safetensors'));
    const result = await run(dir, base, weights);

    const losses = readMetrics(join(result.runDir, 'metrics.jsonl')).map((m) => m.loss as number);
    expect(losses).toHaveLength(10);
    expect(Math.max(...losses.slice(-3))).toBeLessThan(Math.min(...losses.slice(0, 3)));
    expect(readFileSync(join(base, 'model.safetensors')).equals(baseBytes)).toBe(true);

    const checkpoint = join(result.runDir, 'checkpoints', readdirSync(join(result.runDir, 'checkpoints')).sort().at(-1)!);
    const saved = await tensorNames(join(checkpoint, 'model.safetensors'));
    expect(saved.length).toBe(2 * 7 * 2); // A and B, 7 projections, 2 layers
    expect(saved.every((name) => /^base_model\.model\.model\.layers\.\d\.(self_attn|mlp)\.\w+_proj\.lora_[AB]\.weight$/.test(name))).toBe(true);

    const adapter = await readPeftAdapter(result.train!.finalDir);
    expect(adapter.config).toEqual({ rank: 4, alpha: 8, dropout: 0.1, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], rslora: false });
    expect(adapter.baseModel).toBe(base);
    const qB = adapter.tensors.get('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight')!;
    expect(qB.shape).toEqual([32, 4]);
    expect(qB.data.some((v) => v !== 0)).toBe(true);
  });

  it('resumes (dropout included) to the same losses as an uninterrupted run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lora-'));
    const base = await writeBase(dir);
    const a = await run(join(dir, 'a'), base, weights);
    const crash: TrainHooks = {
      afterStep: ({ step }) => {
        if (step === 6) throw new Error('simulated crash');
      },
    };
    await expect(run(join(dir, 'b'), base, weights, crash)).rejects.toThrow('simulated crash');
    const b = await run(join(dir, 'b'), base, weights);
    expect(b.train!.resumedFromStep).toBe(4);
    const lossesA = readMetrics(join(a.runDir, 'metrics.jsonl')).map((m) => m.loss as number);
    const lossesB = readMetrics(join(b.runDir, 'metrics.jsonl')).map((m) => m.loss as number);
    lossesB.forEach((loss, i) => expect(loss).toBeCloseTo(lossesA[i], 5));
  });
});
