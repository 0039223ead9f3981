/**
 * The package as a user imports it, by name: its entry point exists and its functions run a recipe,
 * distil, evaluate and export, with the results the CLI reports.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as slm from 'slm-train';

const TINY_SCRATCH = resolve(import.meta.dirname, '../../recipes/tiny-scratch.yaml');
const STORIES = resolve(import.meta.dirname, '../../datasets/data/stories-small.jsonl');

describe('import "slm-train"', () => {
  it('trains a recipe, loads the result, evaluates and exports it', async () => {
    const outputDir = mkdtempSync(join(tmpdir(), 'slm-api-'));
    const recipe = await slm.loadRecipe(TINY_SCRATCH);
    if (recipe.student.type !== 'scratch') throw new Error('tiny-scratch.yaml has a scratch student');
    const small: slm.Recipe = {
      ...recipe,
      backend: 'wasm',
      outputDir,
      student: { ...recipe.student, architecture: { ...recipe.student.architecture, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 8 } },
      data: { ...recipe.data, train: STORIES, validation: { fraction: 0.1 }, seqLen: 16 },
      train: { ...recipe.train, maxSteps: 3, batchSize: 2, warmupSteps: 1, evalEvery: 3, checkpointEvery: 3 },
      eval: undefined,
      export: undefined,
    };
    const trained = await slm.train(small);
    expect(trained.train?.steps).toBe(3);
    expect(trained.generate).toBeUndefined();

    const { model, tokenizer } = await slm.loadModel(trained.train!.finalDir);
    expect(model).toBeInstanceOf(slm.CausalLM);
    expect(tokenizer!.encode('Once', { addSpecialTokens: false }).length).toBeGreaterThan(0);
    model.dispose();

    // A custom suite the random model scores 0 on, through the same evaluation as `slm-train eval`.
    writeFileSync(join(outputDir, 'capitals.jsonl'), `${JSON.stringify({ country: 'Italy', capital: 'Rome' })}\n`);
    writeFileSync(join(outputDir, 'capitals.yaml'), 'name: capitals\ndata: capitals.jsonl\nprompt: "Capital of {{country}}:"\ntarget_field: capital\ngenerate:\n  max_tokens: 4\n  stop: ["\\n"]\n');
    const target = await slm.localTarget(trained.runDir);
    const [result] = await slm.evaluate(target, [{ suite: 'custom', path: join(outputDir, 'capitals.yaml'), limit: null }], {
      outDir: join(outputDir, 'eval'), seed: 1, logger: { info() {}, warn() {} },
    });
    target.dispose();
    expect(result).toMatchObject({ suite: 'capitals', n: 1 });
    expect((await slm.readEvalResults(join(outputDir, 'eval')))[0].suite).toBe('capitals');

    const exported = await slm.exportRun({ run: trained.runDir, format: 'gguf', ggufType: 'F32' });
    expect(existsSync(exported.path)).toBe(true);
    // Nothing left to train: distil resumes from the final checkpoint and has no generate stage to run.
    await expect(slm.distil({ ...small, teacher: undefined, generate: undefined })).resolves.toMatchObject({ train: { resumedFromStep: 3 } });
  });

  it('exposes the evaluation and comparison functions and the error type the CLI uses', () => {
    for (const name of ['run', 'train', 'distil', 'evaluate', 'localTarget', 'serverTarget', 'compareResults', 'readEvalResults', 'exportRun', 'createTeacher', 'initBackend']) {
      expect(typeof (slm as Record<string, unknown>)[name], name).toBe('function');
    }
    expect(new slm.SlmError('x')).toBeInstanceOf(Error);
  });
});
