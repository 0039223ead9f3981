/** The recipe: recipe.yaml in, a validated, typed `Recipe` out. Nothing downstream reads raw YAML. */
export { loadRecipe, parseRecipe } from './load.ts';
export type { ParseOptions } from './load.ts';
export { RecipeError, formatRecipeIssue } from './errors.ts';
export type { RecipeIssue } from './errors.ts';
export { recipeHash, resolvedRecipeYaml } from './serialize.ts';
export { recipeJsonSchema, recipeJsonSchemaText } from './json-schema.ts';
export { BACKENDS, envVarName } from './schema.ts';
export type * from './types.ts';
