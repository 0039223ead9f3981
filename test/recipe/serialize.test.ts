import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseRecipe, recipeHash, resolvedRecipeYaml } from '../../src/recipe/index.ts';
import { canonicalJson } from '../../src/util/canonical-json.ts';

const fixtures = join(import.meta.dirname, 'fixtures');
const load = (file: string) => parseRecipe(readFileSync(join(fixtures, file), 'utf8'), file, fixtures, { cwd: '/tmp' });

describe('resolvedRecipeYaml', () => {
  it.each(['minimal.yaml', 'full.yaml'])('loads back to the same recipe (%s), from any folder', (file) => {
    const recipe = load(file);
    const text = resolvedRecipeYaml(recipe);
    expect(parseRecipe(text, 'run/recipe.yaml', '/somewhere/else', { cwd: '/elsewhere' })).toEqual(recipe);
  });

  it('writes snake_case keys with every default spelled out', () => {
    const written = parseYaml(resolvedRecipeYaml(load('minimal.yaml')));
    expect(written.train).toMatchObject({ min_lr_ratio: 0.1, clip_grad_norm: 1, betas: [0.9, 0.95] });
    expect(written.student.architecture).toMatchObject({ num_kv_heads: 4, head_dim: 16, rope_scaling: null });
    expect(written.output_dir).toBe('/tmp/runs');
  });
});

describe('recipeHash', () => {
  it('is the sha256 of the sorted-key JSON', () => {
    const recipe = load('minimal.yaml');
    const expected = createHash('sha256').update(canonicalJson(recipe)).digest('hex');
    expect(recipeHash(recipe)).toBe(expected);
    expect(recipeHash(recipe)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('ignores key order and changes with any value', () => {
    const recipe = load('minimal.yaml');
    const reordered = Object.fromEntries(Object.entries(recipe).reverse()) as typeof recipe;
    expect(recipeHash(reordered)).toBe(recipeHash(recipe));
    expect(recipeHash({ ...recipe, train: { ...recipe.train, lr: 3.0001e-4 } })).not.toBe(recipeHash(recipe));
  });
});
