import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isHubId } from '../formats/hf-cache.ts';
import { dpoDefaults, type RecipeYaml } from './schema.ts';

/** A validated recipe whose paths are absolute and whose output_dir is filled in. */
export type ResolvedRecipeYaml = Omit<RecipeYaml, 'output_dir'> & { output_dir: string };

export interface PathContext {
  /** The recipe file's folder: relative paths in the recipe are relative to it. */
  baseDir: string;
  /** The process's working directory, home of the default output_dir `runs`. */
  cwd: string;
}

export function resolvePaths(recipe: RecipeYaml, { baseDir, cwd }: PathContext): ResolvedRecipeYaml {
  const fromRecipe = (path: string) => resolve(baseDir, path);
  const { validation } = recipe.data;
  return {
    name: recipe.name,
    seed: recipe.seed,
    backend: recipe.backend,
    output_dir: recipe.output_dir === undefined ? resolve(cwd, 'runs') : fromRecipe(recipe.output_dir),
    ...(recipe.teacher && { teacher: resolveTeacher(recipe.teacher, baseDir) }),
    ...(recipe.generate && {
      generate: {
        ...recipe.generate,
        prompts: typeof recipe.generate.prompts === 'string' ? fromRecipe(recipe.generate.prompts) : recipe.generate.prompts,
      },
    }),
    student:
      recipe.student.type === 'scratch'
        ? { ...recipe.student, tokenizer: resolveTokenizer(recipe.student.tokenizer, baseDir) }
        : { ...recipe.student, base: resolveBase(recipe.student.base, baseDir) },
    data: {
      ...recipe.data,
      ...(recipe.data.train !== undefined && { train: fromRecipe(recipe.data.train) }),
      ...(recipe.data.mix !== undefined && { mix: recipe.data.mix.map((source) => ({ ...source, path: fromRecipe(source.path) })) }),
      validation: 'path' in validation ? { path: fromRecipe(validation.path) } : validation,
    },
    train: recipe.train,
    ...(recipe.distill && { distill: recipe.distill }),
    ...dpoSection(recipe, baseDir),
    ...(recipe.export && { export: recipe.export }),
    ...(recipe.eval && {
      eval: {
        ...recipe.eval,
        suites: recipe.eval.suites.map((suite) => ({
          ...suite,
          ...(suite.data !== undefined && { data: fromRecipe(suite.data) }),
          ...(suite.fewshot_data !== undefined && { fewshot_data: fromRecipe(suite.fewshot_data) }),
          ...(suite.path !== undefined && { path: fromRecipe(suite.path) }),
        })),
      },
    }),
  };
}

/** The `dpo` section, with its defaults when train.objective is dpo and the recipe has none. */
function dpoSection(recipe: RecipeYaml, baseDir: string): Pick<RecipeYaml, 'dpo'> {
  const dpo = recipe.dpo ?? (recipe.train.objective === 'dpo' ? dpoDefaults() : undefined);
  if (!dpo) return {};
  return { dpo: { ...dpo, reference: dpo.reference === null ? null : resolveBase(dpo.reference, baseDir) } };
}

/** `byte` stays as is; a folder means the tokenizer.json inside it. */
function resolveTokenizer(tokenizer: string, baseDir: string): string {
  if (tokenizer === 'byte') return tokenizer;
  const path = resolve(baseDir, tokenizer);
  return isDirectory(path) ? join(path, 'tokenizer.json') : path;
}

/** A local teacher's model is a path or an ollama: name; a server's model is a name the server knows. */
function resolveTeacher(teacher: NonNullable<RecipeYaml['teacher']>, baseDir: string): NonNullable<RecipeYaml['teacher']> {
  if (teacher.provider !== 'local') return teacher;
  return {
    ...teacher,
    model: resolveBase(teacher.model, baseDir),
    ...(teacher.recipe !== undefined && { recipe: resolve(baseDir, teacher.recipe) }),
  };
}

/**
 * `ollama:` names stay as written, and so do Hugging Face ids (`Qwen/Qwen2.5-0.5B`) that are not also a
 * path beside the recipe: the loader finds those in the Hub cache. Paths become absolute.
 */
function resolveBase(base: string, baseDir: string): string {
  if (base.startsWith('ollama:')) return base;
  const path = resolve(baseDir, base);
  return isHubId(base) && statSync(path, { throwIfNoEntry: false }) === undefined ? base : path;
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}
