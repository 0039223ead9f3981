import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRecipe } from '../../src/recipe/index.ts';

const RECIPES = join(import.meta.dirname, '../../recipes');
const files = readdirSync(RECIPES).filter((name) => name.endsWith('.yaml'));

describe('the recipes users copy', () => {
  it.each(files)('%s is valid', (name) => {
    const recipe = parseRecipe(readFileSync(join(RECIPES, name), 'utf8'), name, RECIPES, { cwd: '/tmp' });
    expect(recipe.name.length).toBeGreaterThan(0);
  });
});
