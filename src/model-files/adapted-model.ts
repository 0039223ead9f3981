/**
 * Any model reference a user has: a model (Hugging Face folder, .gguf, ollama:NAME), a PEFT adapter folder
 * (loaded on its base_model_name_or_path), or a run folder (its final/: a model or an adapter). An adapter
 * runs beside its base, unmerged, through the projection it returns: `score`, `generate` and `eval` take
 * a LoRA run as it is, with no merged export first. It sits beside the PEFT reader it needs.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostTensor } from '../formats/safetensors.ts';
import type { Projection } from '../model/layers.ts';
import { modelDigest } from './digest.ts';
import type { ModelConfig } from '../model/config.ts';
import { inspectModel, loadModel, type LoadedModel, type LoadModelOptions } from './load.ts';
import { LoraAdapter } from '../model/lora.ts';
import { pathExists } from '../util/path-exists.ts';
import { SlmError } from '../util/errors.ts';
import { ADAPTER_CONFIG_FILE, readPeftAdapter } from './peft.ts';

export interface AdaptedModel extends LoadedModel {
  /** The projections to run with: the adapter's beside the base, or the model's own. */
  project: Projection;
  /** Its tensors in Hugging Face layout, the adapter merged in, one at a time (for an export). */
  mergedTensors(): Iterable<HostTensor>;
  /** Content digest of what answers (weights and adapter), for caches. */
  digest(): Promise<string>;
  /** Disposes the model and any adapter. */
  dispose(): void;
}

export async function loadAdaptedModel(ref: string, options: LoadModelOptions = {}): Promise<AdaptedModel> {
  const resolved = await resolveModelRef(ref);
  const loaded = await loadModel(resolved.base, options);
  if (!resolved.adapter) {
    return { ...loaded, project: loaded.model.project, mergedTensors: () => loaded.model.eachHfTensor(), digest: resolved.digest, dispose: () => loaded.model.dispose() };
  }
  const saved = await readPeftAdapter(resolved.adapter);
  const adapter = LoraAdapter.fromPeftTensors(loaded.model, saved.config, saved.tensors);
  return {
    ...loaded,
    project: adapter.wrap(loaded.model),
    mergedTensors: () => adapter.mergedHfTensors(loaded.model),
    digest: resolved.digest,
    dispose: () => {
      adapter.dispose();
      loaded.model.dispose();
    },
  };
}

/** The config of the model loadAdaptedModel(ref) loads (an adapter's base), read from headers only. */
export async function adaptedModelConfig(ref: string): Promise<ModelConfig> {
  return (await inspectModel((await resolveModelRef(ref)).base)).config;
}

/** The digest loadAdaptedModel(ref).digest() gives, without loading any weight. */
export async function modelRefDigest(ref: string): Promise<string> {
  return (await resolveModelRef(ref)).digest();
}

interface ResolvedRef {
  base: string;
  adapter: string | null;
  digest(): Promise<string>;
}

async function resolveModelRef(ref: string): Promise<ResolvedRef> {
  const isDir = !ref.startsWith('ollama:') && (await stat(ref).catch(() => undefined))?.isDirectory();
  if (isDir && (await pathExists(join(ref, 'recipe.yaml'))) && (await pathExists(join(ref, 'final')))) return resolveModelRef(join(ref, 'final'));
  if (isDir && (await pathExists(join(ref, ADAPTER_CONFIG_FILE)))) {
    const { baseModel } = await readPeftAdapter(ref);
    if (!baseModel) throw new SlmError(`${join(ref, ADAPTER_CONFIG_FILE)}: no base_model_name_or_path to load the adapter on`, { code: 'ERR_MODEL' });
    return {
      base: baseModel,
      adapter: ref,
      digest: async () => `sha256:${createHash('sha256').update(`${await modelDigest(baseModel)}+${await modelDigest(ref)}`).digest('hex')}`,
    };
  }
  return { base: ref, adapter: null, digest: () => modelDigest(ref) };
}
