/**
 * Checks that involve more than one field, or the file system: the ones a schema cannot express.
 * Each problem names the key it is about, so the error can point at that key's line in recipe.yaml.
 */
import { statSync } from 'node:fs';
import { HubCacheError, isHubId, resolveHubModel } from '../formats/hf-cache.ts';
import type { KeyPath } from './key-path.ts';
import type { ResolvedRecipeYaml } from './resolve.ts';

export interface RecipeProblem {
  keyPath: KeyPath;
  message: string;
}

export function checkRecipe(recipe: ResolvedRecipeYaml): RecipeProblem[] {
  return [
    ...checkArchitecture(recipe),
    ...checkData(recipe),
    ...checkTeacher(recipe),
    ...checkGenerate(recipe),
    ...checkDistill(recipe),
    ...checkObjective(recipe),
    ...checkEval(recipe),
    ...checkTrain(recipe),
    ...checkFiles(recipe),
  ];
}

function checkArchitecture(recipe: ResolvedRecipeYaml): RecipeProblem[] {
  if (recipe.student.type !== 'scratch') return [];
  const arch = recipe.student.architecture;
  const at = (key: string) => ['student', 'architecture', key];
  const problems: RecipeProblem[] = [];
  if (arch.num_heads % arch.num_kv_heads !== 0) {
    problems.push({
      keyPath: at('num_kv_heads'),
      message: `num_heads (${arch.num_heads}) must be a multiple of num_kv_heads (${arch.num_kv_heads})`,
    });
  }
  if (!Number.isInteger(arch.head_dim)) {
    problems.push({
      keyPath: at('head_dim'),
      message: `hidden_size / num_heads = ${arch.hidden_size} / ${arch.num_heads} is not a whole number; set head_dim`,
    });
  } else if (arch.head_dim % 2 !== 0) {
    // RoPE rotates pairs of dimensions.
    problems.push({ keyPath: at('head_dim'), message: `must be even, got ${arch.head_dim}` });
  }
  const scaling = arch.rope_scaling;
  if (scaling && scaling.high_freq_factor <= scaling.low_freq_factor) {
    problems.push({
      keyPath: [...at('rope_scaling'), 'high_freq_factor'],
      message: `must be greater than low_freq_factor (${scaling.low_freq_factor}), got ${scaling.high_freq_factor}`,
    });
  }
  return problems;
}

function checkData(recipe: ResolvedRecipeYaml): RecipeProblem[] {
  return [...checkDataSource(recipe), ...checkSeqLen(recipe)];
}

/** The train stage reads either data.train or the shards the generate stage wrote, never both. */
function checkDataSource({ data, generate }: ResolvedRecipeYaml): RecipeProblem[] {
  if (data.train === undefined && data.mix === undefined && !generate) {
    return [{ keyPath: ['data'], message: 'needs `train` (a JSONL file) or `mix` (several), or the recipe needs a `generate` section' }];
  }
  if (data.train !== undefined && data.mix !== undefined) {
    return [{ keyPath: ['data', 'mix'], message: 'give train or mix, not both' }];
  }
  const given = data.train !== undefined ? 'train' : data.mix !== undefined ? 'mix' : null;
  if (given !== null && generate) {
    return [{ keyPath: ['data', given], message: 'leave it out: with a `generate` section the train stage reads the generated data' }];
  }
  if (generate && 'path' in data.validation) {
    return [{ keyPath: ['data', 'validation', 'path'], message: 'with generated data, hold out a share of it: use { fraction }' }];
  }
  return [];
}

function checkSeqLen(recipe: ResolvedRecipeYaml): RecipeProblem[] {
  // A pretrained base's context length is known only once it is loaded (the train stage checks it).
  if (recipe.student.type !== 'scratch') return [];
  const maxPositions = recipe.student.architecture.max_position_embeddings;
  if (recipe.data.seq_len <= maxPositions) return [];
  return [
    {
      keyPath: ['data', 'seq_len'],
      message: `${recipe.data.seq_len} exceeds student.architecture.max_position_embeddings (${maxPositions})`,
    },
  ];
}

function checkTeacher({ teacher }: ResolvedRecipeYaml): RecipeProblem[] {
  if (!teacher) return [];
  const at = (key: string) => ['teacher', key];
  const problems: RecipeProblem[] = [];
  if (teacher.provider !== 'local' && teacher.recipe !== undefined) {
    problems.push({ keyPath: at('recipe'), message: 'only a local teacher can be produced by a recipe' });
  }
  if (teacher.provider === 'openai' && !teacher.endpoints) {
    problems.push({ keyPath: at('endpoints'), message: 'an openai teacher needs the server base URLs, e.g. [http://127.0.0.1:8000/v1]' });
  }
  if (teacher.provider === 'local') {
    if (teacher.endpoints) problems.push({ keyPath: at('endpoints'), message: 'a local teacher runs in this process: remove endpoints' });
    if (teacher.api_key_env) problems.push({ keyPath: at('api_key_env'), message: 'a local teacher needs no API key: remove it' });
    // A model that a prerequisite recipe produces may not exist yet: the recipe file must.
    if (teacher.recipe !== undefined) {
      const problem = fileProblem(teacher.recipe);
      if (problem) problems.push({ keyPath: at('recipe'), message: problem });
    } else if (!teacher.model.startsWith('ollama:')) {
      const problem = fileProblem(teacher.model, { folderAllowed: true });
      if (problem) problems.push({ keyPath: at('model'), message: problem });
    }
  }
  return problems;
}

function checkGenerate({ generate, teacher }: ResolvedRecipeYaml): RecipeProblem[] {
  if (!generate) return [];
  const problems: RecipeProblem[] = [];
  if (!teacher) problems.push({ keyPath: ['generate'], message: 'needs a `teacher` section: the model that answers the prompts' });
  if (generate.mode === 'label') {
    if (teacher && teacher.provider !== 'local') {
      problems.push({ keyPath: ['generate', 'mode'], message: `label needs teacher.provider local (servers cannot score given text token by token), got ${teacher.provider}` });
    }
    if (typeof generate.prompts !== 'string') {
      problems.push({ keyPath: ['generate', 'prompts'], message: 'label mode needs a file whose records hold prompts and responses' });
    }
  }
  if (generate.mode === 'preference' && generate.samples_per_prompt < 2) {
    problems.push({ keyPath: ['generate', 'samples_per_prompt'], message: `preference mode pairs the answers of one prompt: needs at least 2, got ${generate.samples_per_prompt}` });
  }
  if (generate.filters.answer !== 'none' && generate.reference_field === null) {
    problems.push({ keyPath: ['generate', 'filters', 'answer'], message: 'needs generate.reference_field: the record field holding the reference answer' });
  }
  for (const key of ['require', 'reject'] as const) {
    const problem = regexProblem(generate.filters[key]);
    if (problem) problems.push({ keyPath: ['generate', 'filters', key], message: problem });
  }
  if (typeof generate.prompts === 'string') {
    const problem = fileProblem(generate.prompts);
    if (problem) problems.push({ keyPath: ['generate', 'prompts'], message: problem });
  }
  return problems;
}

function checkDistill({ distill, teacher, generate }: ResolvedRecipeYaml): RecipeProblem[] {
  if (!distill) return [];
  const problems: RecipeProblem[] = [];
  const local = teacher?.provider === 'local';
  if (distill.labels === 'online' && !local) {
    problems.push({ keyPath: ['distill', 'labels'], message: 'online needs teacher.provider local: the teacher runs next to the student at every step' });
  }
  if (distill.on_policy.lambda > 0 && !local) {
    problems.push({ keyPath: ['distill', 'on_policy', 'lambda'], message: 'on-policy distillation needs teacher.provider local, to score what the student samples' });
  }
  if (distill.labels === 'stored' && (!generate || generate.k === 0)) {
    problems.push({ keyPath: ['distill', 'labels'], message: 'stored needs soft labels from a `generate` section with k > 0' });
  }
  return problems;
}

/** What each objective trains on: dpo, preference pairs (with its `dpo` section); sft, everything else. */
function checkObjective({ train, dpo, distill, data, generate }: ResolvedRecipeYaml): RecipeProblem[] {
  const problems: RecipeProblem[] = [];
  if (train.objective === 'sft') {
    if (dpo) problems.push({ keyPath: ['dpo'], message: 'applies to train.objective: dpo; set it, or remove this section' });
    if (generate?.mode === 'preference') problems.push({ keyPath: ['generate', 'mode'], message: 'preference pairs train with train.objective: dpo' });
    return problems;
  }
  const pairsOnly = 'train.objective dpo learns from preference pairs';
  if (distill) problems.push({ keyPath: ['distill'], message: `leave it out: ${pairsOnly}, not from the teacher's distributions` });
  if (data.mix !== undefined) problems.push({ keyPath: ['data', 'mix'], message: `${pairsOnly} in one file: use data.train` });
  if (data.format !== 'auto') problems.push({ keyPath: ['data', 'format'], message: `${pairsOnly}, read by their fields (prompt, chosen, rejected): leave format auto` });
  if (generate && generate.mode !== 'preference') problems.push({ keyPath: ['generate', 'mode'], message: `${pairsOnly}: set mode preference to generate them` });
  if (dpo?.loss === 'ipo' && dpo.label_smoothing > 0) problems.push({ keyPath: ['dpo', 'label_smoothing'], message: 'applies to the sigmoid losses, not ipo' });
  const reference = dpo?.reference;
  if (reference && !reference.startsWith('ollama:')) {
    const problem = fileProblem(reference, { folderAllowed: true });
    if (problem) problems.push({ keyPath: ['dpo', 'reference'], message: problem });
  }
  return problems;
}

function checkEval(recipe: ResolvedRecipeYaml): RecipeProblem[] {
  const evaluation = recipe.eval;
  if (!evaluation) return [];
  const problems: RecipeProblem[] = [];
  evaluation.suites.forEach((suite, i) => {
    const at = (key: string) => ['eval', 'suites', i, key];
    const needs = suite.suite === 'custom' ? 'path' : 'data';
    const path = suite.suite === 'custom' ? suite.path : suite.data;
    if (path === undefined) problems.push({ keyPath: ['eval', 'suites', i], message: `${suite.suite} needs \`${needs}\`` });
    else {
      const problem = fileProblem(path, { folderAllowed: suite.suite === 'mmlu' });
      if (problem) problems.push({ keyPath: at(needs), message: problem });
    }
  });
  if (evaluation.targets.includes('teacher') && !recipe.teacher) problems.push({ keyPath: ['eval', 'targets'], message: 'teacher needs a `teacher` section' });
  if (evaluation.targets.includes('ce_baseline') && !recipe.distill?.compare_ce) {
    problems.push({ keyPath: ['eval', 'targets'], message: 'ce_baseline needs distill.compare_ce: true' });
  }
  if (evaluation.targets.includes('base') && recipe.student.type === 'scratch') problems.push({ keyPath: ['eval', 'targets'], message: 'base is for LoRA and full students (a scratch student has none)' });
  return problems;
}

function regexProblem(source: string | null): string | undefined {
  if (source === null) return undefined;
  try {
    new RegExp(source);
    return undefined;
  } catch (error) {
    return `not a valid regular expression: ${(error as Error).message}`;
  }
}

function checkTrain(recipe: ResolvedRecipeYaml): RecipeProblem[] {
  const { warmup_steps, max_steps, epochs } = recipe.train;
  if (max_steps === null && epochs === null) return [{ keyPath: ['train', 'max_steps'], message: 'required: give max_steps (optimizer steps) or epochs (passes over the data)' }];
  if (max_steps !== null && epochs !== null) return [{ keyPath: ['train', 'epochs'], message: `give max_steps or epochs, not both (max_steps is ${max_steps})` }];
  if (max_steps === null || warmup_steps <= max_steps) return [];
  return [{ keyPath: ['train', 'warmup_steps'], message: `${warmup_steps} exceeds train.max_steps (${max_steps})` }];
}

function checkFiles(recipe: ResolvedRecipeYaml): RecipeProblem[] {
  const files: [KeyPath, string][] = [
    ...(recipe.data.train === undefined ? [] : [[['data', 'train'], recipe.data.train] as [KeyPath, string]]),
    ...(recipe.data.mix ?? []).map((source, i): [KeyPath, string] => [['data', 'mix', i, 'path'], source.path]),
  ];
  const { validation } = recipe.data;
  if ('path' in validation) files.push([['data', 'validation', 'path'], validation.path]);
  const { student } = recipe;
  if (student.type === 'scratch' && student.tokenizer !== 'byte') files.push([['student', 'tokenizer'], student.tokenizer]);
  const problems = files.flatMap(([keyPath, path]) => {
    const problem = fileProblem(path);
    return problem ? [{ keyPath, message: problem }] : [];
  });
  // A base that the teacher's prerequisite recipe produces (DPO on the model a recipe distilled) may not exist yet.
  const producedFirst = recipe.teacher?.recipe !== undefined && recipe.teacher.model;
  if (student.type !== 'scratch' && !student.base.startsWith('ollama:') && student.base !== producedFirst) {
    const problem = fileProblem(student.base, { folderAllowed: true });
    if (problem) problems.push({ keyPath: ['student', 'base'], message: problem });
  }
  return problems;
}

function fileProblem(path: string, { folderAllowed = false } = {}): string | undefined {
  const stats = statSync(path, { throwIfNoEntry: false });
  if (!stats && folderAllowed && isHubId(path)) return hubProblem(path);
  if (!stats) return `file not found: ${path}`;
  if (!stats.isFile() && !(folderAllowed && stats.isDirectory())) return `not a file: ${path}`;
  return undefined;
}

/** A Hugging Face id (kept as written by resolve.ts) that is not in the Hub cache: where it was looked for. */
function hubProblem(id: string): string | undefined {
  try {
    resolveHubModel(id);
    return undefined;
  } catch (error) {
    if (error instanceof HubCacheError) return error.message;
    throw error;
  }
}
