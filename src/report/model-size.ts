/**
 * Parameter counts of the student and the teacher, from configs alone (no weights are read): a Hugging Face
 * folder's config.json, a GGUF file's metadata, or an Ollama model's GGUF. A size that cannot be known
 * (a server teacher, a run without final/) comes back with the reason instead.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { latestCheckpoint } from '../../trainers/checkpoint.ts';
import { GgufFile } from '../formats/gguf/reader.ts';
import { readGgufModelConfig } from '../model-files/gguf-model.ts';
import { readHfConfig } from '../model-files/hf-model-dir.ts';
import { resolveOllamaModel } from '../formats/ollama-store.ts';
import { countParameters, resolveModelConfig, type ModelConfig } from '../model/config.ts';
import { loraModules, resolveLoraConfig } from '../model/lora-config.ts';
import type { LoraStudentSpec, Recipe } from '../recipe/index.ts';
import { runPathsAt } from '../run/layout.ts';
import { readJsonFile } from '../util/read-json.ts';
import { RunReportError } from './run-files.ts';

export type ModelSize =
  | {
      parameters: number;
      /** What training updated: every parameter of a scratch student, the adapter of a LoRA one. */
      trainable: number | null;
      /** Where the count comes from. */
      source: string;
    }
  | { parameters: null; reason: string };

/** The student's size: its final/ config, or the latest checkpoint's while it trains; a LoRA student's base. */
export async function studentSize(recipe: Recipe, runDir: string): Promise<ModelSize> {
  if (recipe.student.type === 'lora') return loraStudentSize(recipe.student);
  const paths = runPathsAt(runDir);
  if (await isDirectory(paths.final)) {
    const parameters = countParameters((await readHfConfig(paths.final)).config);
    return { parameters, trainable: parameters, source: join(paths.final, 'config.json') };
  }
  const checkpoint = await latestCheckpoint(paths.checkpoints);
  const configFile = checkpoint && join(checkpoint.dir, 'config.json');
  if (!configFile || !(await isFile(configFile))) return { parameters: null, reason: 'no final/ or checkpoint yet' };
  // Checkpoints keep the ModelConfig itself (camelCase), not an HF config.json.
  const config = await readJsonFile(configFile, (_, detail, cause) => new RunReportError(`${configFile}: ${detail}`, { cause }));
  const parameters = countParameters(resolveModelConfig(config as ModelConfig));
  return { parameters, trainable: parameters, source: configFile };
}

export async function teacherSize(recipe: Recipe): Promise<ModelSize> {
  const teacher = recipe.teacher;
  if (!teacher) return { parameters: null, reason: 'the recipe has no teacher' };
  if (teacher.provider === 'openai') return { parameters: null, reason: `${teacher.model} is served by an OpenAI-compatible server, which does not publish its size` };
  // An Ollama teacher's weights are readable when the server runs on this machine's model store.
  return sizeOf(teacher.provider === 'ollama' ? `ollama:${teacher.model}` : teacher.model, () => null);
}

function loraStudentSize(spec: LoraStudentSpec): Promise<ModelSize> {
  const lora = resolveLoraConfig(spec);
  // Each adapted projection gets A [r, in] and B [out, r].
  return sizeOf(spec.base, (config) => loraModules(config, lora).reduce((sum, m) => sum + lora.rank * (m.inFeatures + m.outFeatures), 0));
}

async function sizeOf(ref: string, trainable: (config: ModelConfig) => number | null): Promise<ModelSize> {
  try {
    const { config, source } = await modelConfigOf(ref);
    return { parameters: countParameters(config), trainable: trainable(config), source };
  } catch (error) {
    return { parameters: null, reason: `cannot read ${ref}: ${(error as Error).message}` };
  }
}

/** The config of a model reference: a Hugging Face folder, a .gguf file, or `ollama:NAME[:TAG]`. */
async function modelConfigOf(ref: string): Promise<{ config: ModelConfig; source: string }> {
  const path = ref.startsWith('ollama:') ? (await resolveOllamaModel(ref)).modelBlob : ref;
  if (await isDirectory(path)) return { config: (await readHfConfig(path)).config, source: join(path, 'config.json') };
  const file = await GgufFile.open(path);
  try {
    return { config: await readGgufModelConfig(file), source: ref };
  } finally {
    await file.close();
  }
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}
