/**
 * recipe.yaml -> Recipe: parse the YAML keeping positions, validate the shape, resolve paths, check the
 * relations between fields and the files named. Every failure becomes a RecipeError pointing at a line.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { SlmError } from '../util/errors.ts';
import { toRecipe } from './case.ts';
import { checkRecipe } from './checks.ts';
import { RecipeError } from './errors.ts';
import type { RecipeIssue } from './errors.ts';
import { describeIssues } from './issues.ts';
import { formatKeyPath } from './key-path.ts';
import type { KeyPath } from './key-path.ts';
import { resolvePaths } from './resolve.ts';
import { applyOverrides, overrideAt, parseOverride, type RecipeOverride } from './overrides.ts';
import { recipeSchema } from './schema.ts';
import type { Recipe } from './types.ts';
import { YamlSource } from './yaml-source.ts';
import type { Target } from './yaml-source.ts';

export interface ParseOptions {
  /** Home of the default output_dir `runs`; process.cwd() when not given. */
  cwd?: string;
  /** Command-line overrides (`train.lr=1e-4`), applied before validation, in order. */
  overrides?: readonly string[];
}

/** `path` is quoted as given in error messages, so pass it the way the user wrote it. */
export async function loadRecipe(path: string, options: ParseOptions = {}): Promise<Recipe> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    const reason = error.code === 'ENOENT' ? 'no such file' : error.message;
    throw new SlmError(`${path}: cannot read the recipe: ${reason}`, { code: 'ERR_RECIPE_READ', cause: error });
  });
  return parseRecipe(text, path, dirname(resolve(path)), options);
}

/** `fileName` names the source in messages; relative paths in the recipe resolve against `baseDir`. */
export function parseRecipe(text: string, fileName: string, baseDir: string, options: ParseOptions = {}): Recipe {
  const source = YamlSource.parse(text, fileName);
  if (source.data == null) throw locatedError(source, [{ keyPath: [], message: 'the recipe is empty' }]);
  const overrides = (options.overrides ?? []).map(parseOverride);
  const data = applyOverrides(source.data, overrides);
  const parsed = recipeSchema.safeParse(data);
  if (!parsed.success) throw locatedError(source, describeIssues(parsed.error.issues, data), overrides);
  const resolved = resolvePaths(parsed.data, { baseDir: resolve(baseDir), cwd: options.cwd ?? process.cwd() });
  const problems = checkRecipe(resolved);
  if (problems.length > 0) throw locatedError(source, problems, overrides);
  return toRecipe(resolved);
}

export interface Problem {
  keyPath: KeyPath;
  message: string;
  target?: Target;
}

/**
 * Problems at key paths of a YAML file -> one error naming each problem's file:line:column, or the
 * command-line override that set the key (or one above it).
 */
export function locatedError(source: YamlSource, problems: readonly Problem[], overrides: readonly RecipeOverride[] = []): RecipeError {
  const issues: RecipeIssue[] = problems.map(({ keyPath, message, target = 'value' }) => {
    const { line, column } = source.locate(keyPath, target);
    const override = overrideAt(overrides, keyPath)?.text;
    return { file: source.fileName, line, column, keyPath: formatKeyPath(keyPath), problem: message, ...(override !== undefined && { override }) };
  });
  issues.sort((a, b) => a.line - b.line || a.column - b.column);
  return new RecipeError(issues);
}
