/** Converts between recipe.yaml's snake_case keys and the camelCase `Recipe`. Values are never touched. */
import type { ResolvedRecipeYaml } from './resolve.ts';
import type { Recipe } from './types.ts';

type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;

type Camelized<T> = T extends readonly unknown[]
  ? { [I in keyof T]: Camelized<T[I]> }
  : T extends object
    ? { [K in keyof T as K extends string ? CamelCase<K> : K]: Camelized<T[K]> }
    : T;

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;

// Fails to compile when types.ts and schema.ts drift apart (a field added to one and not the other).
export type RecipeMatchesSchema = Assert<Equal<Recipe, Camelized<ResolvedRecipeYaml>>>;

export function camelCaseKey(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
}

export function snakeCaseKey(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

export function toRecipe(yaml: ResolvedRecipeYaml): Recipe {
  return renameKeys(yaml, camelCaseKey) as Recipe;
}

export function toRecipeYaml(recipe: Recipe): ResolvedRecipeYaml {
  return renameKeys(recipe, snakeCaseKey) as ResolvedRecipeYaml;
}

function renameKeys(value: unknown, rename: (key: string) => string): unknown {
  if (Array.isArray(value)) return value.map((item) => renameKeys(item, rename));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [rename(key), renameKeys(item, rename)]));
}
