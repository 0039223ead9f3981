import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHubId } from '../../src/formats/hf-cache.ts';
import { parseRecipe } from '../../src/recipe/index.ts';

const RECIPES = join(import.meta.dirname, '../../recipes');
const files = readdirSync(RECIPES).filter((name) => name.endsWith('.yaml'));

/**
 * The Hugging Face ids the recipes name (a base or a teacher), laid out in a Hub cache of the test's own:
 * a recipe is checked for its shape and settings, not for what this machine has downloaded.
 */
function stubHubCache(): string {
  const cache = mkdtempSync(join(tmpdir(), 'shipped-hub-'));
  const ids = files.flatMap((name) =>
    [...readFileSync(join(RECIPES, name), 'utf8').matchAll(/^\s*(?:base|model):\s*(\S+)/gm)].map((m) => m[1]).filter(isHubId),
  );
  for (const id of new Set(ids)) {
    const repo = join(cache, `models--${id.replace('/', '--')}`);
    const commit = '0'.repeat(40);
    mkdirSync(join(repo, 'snapshots', commit), { recursive: true });
    mkdirSync(join(repo, 'refs'), { recursive: true });
    writeFileSync(join(repo, 'refs', 'main'), commit);
    writeFileSync(join(repo, 'snapshots', commit, 'config.json'), '{}');
  }
  return cache;
}

const saved = process.env.HF_HUB_CACHE;
beforeAll(() => void (process.env.HF_HUB_CACHE = stubHubCache()));
afterAll(() => {
  if (saved === undefined) delete process.env.HF_HUB_CACHE;
  else process.env.HF_HUB_CACHE = saved;
});

describe('the recipes users copy', () => {
  it.each(files)('%s is valid', (name) => {
    const recipe = parseRecipe(readFileSync(join(RECIPES, name), 'utf8'), name, RECIPES, { cwd: '/tmp' });
    expect(recipe.name.length).toBeGreaterThan(0);
  });
});
