import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { canonicalJson } from '../util/canonical-json.ts';
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
