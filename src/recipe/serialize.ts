import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { toRecipeYaml } from './case.ts';
import type { Recipe } from './types.ts';

/**
 * The recipe as a run used it, for `<run>/recipe.yaml`: every default written out and every path
 * absolute, so it loads back to the same Recipe. Secrets cannot appear: `*_env` keys hold variable names.
 */
export function resolvedRecipeYaml(recipe: Recipe): string {
  const header = '# Resolved by slm-train: every default filled in, every path absolute.\n';
  return header + stringify(toRecipeYaml(recipe));
}

/** sha256 (hex) of the recipe's canonical JSON: the same settings give the same hash, whatever the key order. */
export function recipeHash(recipe: Recipe): string {
  return createHash('sha256').update(canonicalJson(recipe)).digest('hex');
}

/** JSON with object keys sorted at every level. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
