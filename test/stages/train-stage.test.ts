import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModelDir } from '../../src/model-files/load.ts';
import { loadRecipe, type Recipe } from '../../src/recipe/index.ts';
import { readMetrics } from '../../src/run/metrics.ts';
import { runRecipe } from '../../src/stages/run-recipe.ts';
import { silentLogger } from '../../src/util/progress.ts';
import type { TrainHooks } from '../../src/stages/train-stage.ts';
import { SafetensorsFile } from '../../src/formats/safetensors.ts';

const STORIES = resolve(import.meta.dirname, '../../datasets/data/stories-small.jsonl');

const TINY_SCRATCH = resolve(import.meta.dirname, '../../recipes/tiny-scratch.yaml');

/** recipes/tiny-scratch.yaml, shrunk to train a dozen steps in a second or two. */
async function smallRecipe(outputDir: string): Promise<Recipe> {
  const recipe = await loadRecipe(TINY_SCRATCH);
  if (recipe.student.type !== 'scratch') throw new Error('tiny-scratch.yaml has a scratch student');
  return {
    ...recipe,
    seed: 3,
    backend: 'wasm',
    outputDir,
    student: {
      ...recipe.student,
      architecture: { ...recipe.student.architecture, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8 },
    },
    data: { ...recipe.data, train: STORIES, validation: { fraction: 0.1 }, seqLen: 32 },
    train: { ...recipe.train, maxSteps: 12, batchSize: 4, lr: 3e-3, warmupSteps: 2, evalEvery: 4, evalBatches: 2, checkpointEvery: 4 },
  };
}

const quiet = { logger: silentLogger, json: true, progressStream: { write: () => true } };

async function run(dir: string, hooks?: TrainHooks) {
  return runRecipe(await smallRecipe(dir), { ...quiet, hooks });
}

async function readAll(path: string): Promise<Map<string, Float32Array>> {
  const file = await SafetensorsFile.open(path);
  const tensors = new Map<string, Float32Array>();
  for (const name of file.names()) tensors.set(name, await file.read(name));
  file.close();
  return tensors;
}

describe('training a scratch student from a recipe', () => {
  it('lowers the loss, logs each step once, validates, and writes final/ as a loadable HF model', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'train-'));
    const result = await run(dir);
    const metrics = readMetrics(join(result.runDir, 'metrics.jsonl'));
    expect(metrics.map((m) => m.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(metrics.filter((m) => m.val_loss !== undefined).map((m) => m.step)).toEqual([4, 8, 12]);
    const losses = metrics.map((m) => m.loss as number);
    expect(Math.max(...losses.slice(-3))).toBeLessThan(Math.min(...losses.slice(0, 3)));
    expect(result.train!.validationLoss).toBe(metrics[11].val_loss);

    const { model, tokenizer } = await loadModelDir(result.train!.finalDir);
    expect(tokenizer!.vocabSize).toBe(259);
    const finalWeights = await readAll(join(result.train!.finalDir, 'model.safetensors'));
    expect(finalWeights.size).toBe(model.params.size);
    const ids = tokenizer!.encode('One day, Lucy', { addSpecialTokens: true });
    const logits = model.forward(tf.tensor2d(ids, [1, ids.length], 'int32'));
    expect(logits.shape).toEqual([1, ids.length, 259]);
    model.dispose();
    expect(readFileSync(join(result.runDir, 'recipe.yaml'), 'utf8')).toContain('max_steps: 12');
    expect(JSON.parse(readFileSync(join(result.train!.finalDir, 'tokenizer_config.json'), 'utf8')).eos_token).toBe('<|eos|>');
  });

  it('resumes after a crash to the same losses and weights as an uninterrupted run', async () => {
    const uninterrupted = await run(mkdtempSync(join(tmpdir(), 'train-a-')));

    const dir = mkdtempSync(join(tmpdir(), 'train-b-'));
    const crash: TrainHooks = {
      afterStep: ({ step }) => {
        if (step === 6) throw new Error('simulated crash');
      },
    };
    await expect(run(dir, crash)).rejects.toThrow('simulated crash');
    const resumed = await run(dir);
    expect(resumed.train!.resumedFromStep).toBe(4);

    const a = readMetrics(join(uninterrupted.runDir, 'metrics.jsonl'));
    const b = readMetrics(join(resumed.runDir, 'metrics.jsonl'));
    expect(b.map((m) => m.step)).toEqual(a.map((m) => m.step));
    for (let i = 0; i < a.length; i++) {
      expect(b[i].loss as number).toBeCloseTo(a[i].loss as number, 5);
      expect(b[i].lr).toBe(a[i].lr);
    }
    const weightsA = await readAll(join(uninterrupted.train!.finalDir, 'model.safetensors'));
    const weightsB = await readAll(join(resumed.train!.finalDir, 'model.safetensors'));
    for (const [name, values] of weightsA) {
      const other = weightsB.get(name)!;
      const diff = values.reduce((max, v, i) => Math.max(max, Math.abs(v - other[i])), 0);
      expect(diff, name).toBeLessThan(1e-5);
    }
  });

  it('trains for train.epochs: steps from the packed windows, the data served that many epochs, and an exact resume mid-epoch', async () => {
    const lines: string[] = [];
    const byEpochs = async (dir: string, hooks?: TrainHooks) => {
      const recipe = await smallRecipe(dir);
      // A small training split, so that 1.5 epochs are a few dozen steps.
      const data = { ...recipe.data, validation: { fraction: 0.9 } };
      const train = { ...recipe.train, maxSteps: null, epochs: 1.5, checkpointEvery: 5 };
      const logger = { ...silentLogger, info: (line: string) => void lines.push(line) };
      return runRecipe({ ...recipe, data, train }, { ...quiet, json: false, logger, progressStream: { write: (text: string) => void lines.push(text) }, hooks });
    };
    const uninterrupted = await byEpochs(mkdtempSync(join(tmpdir(), 'epochs-a-')));
    const announced = lines.map((line) => /train\.epochs 1\.5: (\d+) steps over (\d+) training windows \(batch 4 x 1\)/.exec(line)).find(Boolean);
    expect(announced).toBeDefined();
    const [steps, windows] = [Number(announced![1]), Number(announced![2])];
    expect(steps).toBe(Math.ceil(1.5 * Math.ceil(windows / 4)));
    expect(uninterrupted.train!.steps).toBe(steps);
    const a = readMetrics(join(uninterrupted.runDir, 'metrics.jsonl'));
    expect(a.map((m) => m.step)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
    // The data iterator served steps x 4 windows: one whole epoch and then some.
    const last = JSON.parse(readFileSync(join(uninterrupted.runDir, 'checkpoints', `step-${String(steps).padStart(8, '0')}`, 'trainer_state.json'), 'utf8'));
    expect(last.dataState).toMatchObject({ epoch: Math.floor((steps * 4) / windows), position: (steps * 4) % windows });
    expect(last.dataState.epoch).toBe(1);

    // Killed in the second epoch, resumed from its checkpoint: the same steps, losses and learning rates.
    const crashAt = steps - 2;
    const dir = mkdtempSync(join(tmpdir(), 'epochs-b-'));
    const crash: TrainHooks = {
      afterStep: ({ step }) => {
        if (step === crashAt) throw new Error('simulated crash');
      },
    };
    await expect(byEpochs(dir, crash)).rejects.toThrow('simulated crash');
    const resumed = await byEpochs(dir);
    expect(resumed.train!.resumedFromStep).toBe(Math.floor(crashAt / 5) * 5);
    expect(resumed.train!.resumedFromStep! * 4).toBeGreaterThan(windows); // past the first epoch's end
    const b = readMetrics(join(resumed.runDir, 'metrics.jsonl'));
    expect(b.map((m) => m.step)).toEqual(a.map((m) => m.step));
    for (let i = 0; i < a.length; i++) {
      expect(b[i].loss as number).toBeCloseTo(a[i].loss as number, 5);
      expect(b[i].lr).toBe(a[i].lr);
    }
  });

  it('on resume: tidies what a kill left, skips a damaged newest checkpoint, refuses changed settings unless forced', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'train-c-'));
    const crash: TrainHooks = {
      afterStep: ({ step }) => {
        if (step === 10) throw new Error('simulated crash');
      },
    };
    await expect(run(dir, crash)).rejects.toThrow('simulated crash');
    const checkpoints = join(dir, 'tiny-scratch/checkpoints');
    expect(readdirSync(checkpoints)).toEqual(['step-00000004', 'step-00000008']);
    mkdirSync(join(checkpoints, '.step-00000012.tmp-123-deadbeef'));
    writeFileSync(join(checkpoints, '.step-00000012.tmp-123-deadbeef/model.safetensors'), Buffer.alloc(4096));
    mkdirSync(join(checkpoints, '.step-00000002.removed-77-0badf00d'));
    truncateSync(join(checkpoints, 'step-00000008/model.safetensors'), 100);

    const changed = { ...(await smallRecipe(dir)), train: { ...(await smallRecipe(dir)).train, lr: 1e-3 } };
    await expect(runRecipe(changed, quiet)).rejects.toThrow(/cannot resume from .*step-00000004: the recipe changed train\.lr: 0\.003 -> 0\.001\. Set train\.resume: force/);
    expect(readdirSync(checkpoints).sort()).toEqual(['step-00000004', 'step-00000008']);

    let stream = '';
    const forced = { ...changed, train: { ...changed.train, resume: 'force' as const } };
    const resumed = await runRecipe(forced, { ...quiet, progressStream: { write: (text: string) => ((stream += text), true) } });
    expect(resumed.train!.resumedFromStep).toBe(4);
    expect(stream).toMatch(/checkpoint .*step-00000008 is damaged .*trying the one before it/);
    expect(stream).toMatch(/resuming from .*step-00000004 although the recipe changed train\.lr/);
  });
});
