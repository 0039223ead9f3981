/**
 * recipes/quickstart.yaml end to end on the same code path, shrunk to run in about a minute: the teacher
 * prerequisite, generation with soft labels, KD and CE-only students, evaluation, export and the report.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRecipe, resolvedRecipeYaml, type Recipe } from '../../src/recipe/index.ts';
import { silentLogger } from '../../src/util/progress.ts';
import { runRecipe } from '../../src/stages/run-recipe.ts';

const RECIPES = resolve(import.meta.dirname, '../../recipes');
const quiet = { logger: silentLogger, json: true, progressStream: { write: () => true } };

function shrinkScratch(recipe: Recipe, hidden: number, layers: number): Recipe['student'] {
  if (recipe.student.type !== 'scratch') throw new Error('the quickstart trains scratch models');
  return { ...recipe.student, architecture: { ...recipe.student.architecture, hiddenSize: hidden, intermediateSize: 2 * hidden, numLayers: layers, numHeads: 2, numKvHeads: 1, headDim: hidden / 2 } };
}

async function reducedQuickstart(dir: string): Promise<Recipe> {
  const teacher = await loadRecipe(join(RECIPES, 'quickstart-teacher.yaml'));
  const smallTeacher: Recipe = {
    ...teacher,
    outputDir: join(dir, 'runs'),
    student: shrinkScratch(teacher, 32, 2),
    train: { ...teacher.train, maxSteps: 12, batchSize: 4, warmupSteps: 2, evalEvery: 6, checkpointEvery: 12 },
  };
  writeFileSync(join(dir, 'teacher.yaml'), resolvedRecipeYaml(smallTeacher));
  const quickstart = await loadRecipe(join(RECIPES, 'quickstart.yaml'));
  return {
    ...quickstart,
    outputDir: join(dir, 'runs'),
    teacher: { ...quickstart.teacher!, model: join(dir, 'runs/quickstart-teacher/final'), recipe: join(dir, 'teacher.yaml') },
    generate: { ...quickstart.generate!, limit: 16, maxTokens: 24, filters: { ...quickstart.generate!.filters, dropTruncated: false, minChars: 0 } },
    student: shrinkScratch(quickstart, 16, 1),
    train: { ...quickstart.train, maxSteps: 6, batchSize: 4, warmupSteps: 1, evalEvery: 3, checkpointEvery: 6 },
    eval: { ...quickstart.eval!, suites: quickstart.eval!.suites.map((suite) => ({ ...suite, limit: 4 })) },
  };
}

describe('the quickstart, reduced', () => {
  it('runs every stage and reports numbers equal to the eval files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-quickstart-'));
    const result = await runRecipe(await reducedQuickstart(dir), quiet);
    const run = join(dir, 'runs/quickstart');
    expect(existsSync(join(dir, 'runs/quickstart-teacher/final/model.safetensors'))).toBe(true);
    expect(result.generate!.k).toBe(8);
    expect(result.train!.distillation.mode).toBe('stored');
    expect(result.ceBaseline!.distillation.mode).toBe('none');
    expect(result.exports!.map((e) => e.format)).toEqual(['hf', 'gguf']);
    expect(existsSync(join(run, 'export/gguf'))).toBe(true);

    const evalOf = (sub: string) => JSON.parse(readFileSync(join(run, sub, 'gsm8k_zeroshot.json'), 'utf8'))['slm-train'];
    const student = evalOf('eval');
    const teacher = evalOf('eval/teacher');
    const ce = evalOf('eval/ce-baseline');
    for (const target of [student, teacher, ce]) expect(target.n).toBe(4);
    const report = readFileSync(join(run, 'report.md'), 'utf8');
    const percent = (x: number) => (x * 100).toFixed(2);
    for (const target of [student, teacher, ce]) {
      const metric = target.metrics[target.primaryMetric];
      expect(report).toContain(`${percent(metric.value)} ± ${percent(metric.stderr)}`);
    }
    expect(existsSync(join(run, 'report.html'))).toBe(true);
  }, 300_000);
});
