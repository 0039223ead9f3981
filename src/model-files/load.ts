import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError } from '../formats/format-error.ts';
import { GgufFile } from '../formats/gguf/reader.ts';
import { loadGgufModel, readGgufModelConfig, type ModelBuilder, type ModelTensorSource } from './gguf-model.ts';
import { isHubId, resolveHubModel } from '../formats/hf-cache.ts';
import { openHfWeights, readHfConfig, type HfWeights } from './hf-model-dir.ts';
import { resolveOllamaModel } from '../formats/ollama-store.ts';
import { tokenizerFromGguf } from '../tokenizer/gguf-tokenizer.ts';
import { loadTokenizer } from '../tokenizer/hf-tokenizer.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { pathExists } from '../util/path-exists.ts';
import { backendCapacity, type BackendCapacity } from '../backend/capacity.ts';
import { readJsonFile } from '../util/read-json.ts';
import { formatSize } from '../util/format-size.ts';
import { CausalLM } from '../model/causal-lm.ts';
import type { PinnedForm } from '../model/frozen-weights.ts';
import { countParameters, layerCountMismatch, parameterCountMismatch, describeModelSize, type ModelConfig } from '../model/config.ts';
import type { WeightResidency } from '../model/residency.ts';

export interface LoadedModel {
  model: CausalLM;
  /** Null when a model directory has no tokenizer.json (score then needs ids). */
  tokenizer: Tokenizer | null;
  /** The Jinja chat template (tokenizer_config.json or GGUF `tokenizer.chat_template`), null when there is none. */
  chatTemplate: string | null;
}

export interface LoadModelOptions {
  /** Told the memory the model will take before its weights are read. */
  logger?: { info(message: string): void };
  /** Ollama's store for `ollama:` references; default $OLLAMA_MODELS or ~/.ollama/models. */
  ollamaModelsDir?: string;
  /** How the weights are held (see WeightResidency); default auto. */
  weights?: WeightResidency;
  /** For streamed weights, the backend bytes uploads may stay in (see defaultPinBytes). */
  pinBytes?: number;
  /** The form they stay in: as stored (default: decoding reads fewer bytes), or float32 (training's products). */
  pinAs?: PinnedForm;
}

export class ModelLoadError extends FormatError {}

/** The residency `auto` settles on for a model of this config on the live backend. */
export function resolveResidency(config: ModelConfig, requested: WeightResidency = 'auto', capacity = backendCapacity()): 'resident' | 'streamed' {
  if (requested !== 'auto') return requested;
  if (capacity.maxTensorBytes !== undefined && largestMatrixBytes(config) > capacity.maxTensorBytes) return 'streamed';
  return countParameters(config) * 4 <= capacity.bytes / 2 ? 'resident' : 'streamed';
}

/** The largest float32 weight a resident model holds: the embedding (or head), or an MLP matrix. */
function largestMatrixBytes({ vocabSize, hiddenSize, intermediateSize }: ModelConfig): number {
  return 4 * hiddenSize * Math.max(vocabSize, intermediateSize);
}

/** The model from tensors read by name: resident float32 variables, or compact streamed matrices. */
export async function buildModel(
  config: ModelConfig,
  unchecked: ModelTensorSource,
  options: LoadModelOptions,
  describe: string,
  path: string,
): Promise<CausalLM> {
  const source = finiteSource(unchecked, path);
  const capacity = backendCapacity();
  const residency = resolveResidency(config, options.weights, capacity);
  options.logger?.info(`${describe}; ${residency === 'resident' ? 'held in the backend' : `streamed per layer from host memory in its stored types (${capacity.backend} holds ${formatSize(capacity.bytes)})`}`);
  if (residency === 'resident') return CausalLM.fromHfTensors(config, (name) => source.read(name));
  return CausalLM.fromCompactTensors(config, (name) => source.readCompact(name), { pinBytes: options.pinBytes ?? defaultPinBytes(config, capacity), pinAs: options.pinAs });
}

/** `source` refusing any tensor that holds NaN or Inf (damaged weights would otherwise give NaN scores), naming it. */
function finiteSource(source: ModelTensorSource, path: string): ModelTensorSource {
  const refuse = (name: string, index: number) =>
    new ModelLoadError(path, 'NON_FINITE', `tensor '${name}' holds NaN or Inf (at element ${index}): the weights are damaged`);
  return {
    async read(name) {
      const tensor = await source.read(name);
      const index = tensor ? firstNonFinite(tensor.data) : -1;
      if (index >= 0) throw refuse(name, index);
      return tensor;
    },
    async readCompact(name) {
      const tensor = await source.readCompact(name);
      const index = tensor ? tensor.firstNonFinite() : -1;
      if (index >= 0) throw refuse(name, index);
      return tensor;
    },
  };
}

function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) if (values[i] - values[i] !== 0) return i;
  return -1;
}

/**
 * Streamed weights kept uploaded by default (inference: every token would upload every layer again): half
 * the backend, and no more than 0.3 x the model's BF16 size + 0.5 GiB, which keeps scoring 512 tokens of
 * Llama-3.2-1B on wasm within 1.3 x its stored size + 2 GiB of host memory.
 */
function defaultPinBytes(config: ModelConfig, capacity: BackendCapacity): number {
  return Math.min(capacity.bytes / 2, 0.3 * countParameters(config) * 2 + 0.5 * 2 ** 30);
}

const OLLAMA_PREFIX = 'ollama:';

function notFound(ref: string): ModelLoadError {
  return new ModelLoadError(ref, 'MODEL_NOT_FOUND', `not found (expected a Hugging Face model directory or id, a .gguf file or ${OLLAMA_PREFIX}NAME[:TAG])`);
}

/**
 * The file or folder a model reference names: an Ollama model's GGUF blob, a path as it is, else a Hub id's
 * copy in the Hugging Face cache.
 */
async function localPath(ref: string, ollamaModelsDir?: string): Promise<string> {
  if (ref.startsWith(OLLAMA_PREFIX)) return (await resolveOllamaModel(ref, { modelsDir: ollamaModelsDir })).modelBlob;
  if ((await pathExists(ref)) || !isHubId(ref)) return ref;
  return resolveHubModel(ref);
}

/**
 * A model from any source this project reads: a Hugging Face model directory, a Hub id already in the
 * Hugging Face cache (`Qwen/Qwen2.5-0.5B-Instruct`), a GGUF file, or `ollama:NAME[:TAG]` (the GGUF of a
 * model in Ollama's store).
 */
export async function loadModel(ref: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  if (ref.startsWith(OLLAMA_PREFIX)) return loadOllamaModel(ref, options);
  const path = await localPath(ref);
  const stats = await stat(path).catch(() => undefined);
  if (stats?.isDirectory()) return loadModelDir(path, options);
  if (stats?.isFile()) return loadGgufModel(path, { build: ggufBuilder(options) });
  throw notFound(ref);
}

/** A model reference's config and the bytes its weights take as stored, read from headers only. */
export async function inspectModel(ref: string, options: Pick<LoadModelOptions, 'ollamaModelsDir'> = {}): Promise<{ config: ModelConfig; storedBytes: number }> {
  const path = await localPath(ref, options.ollamaModelsDir);
  const stats = await stat(path).catch(() => undefined);
  if (stats?.isDirectory()) {
    const { config } = await readHfConfig(path);
    const weights = await openHfWeights(path);
    try {
      checkHfConfig(path, config, weights);
      return { config, storedBytes: weights.names().reduce((n, name) => n + weights.info(name).byteLength, 0) };
    } finally {
      await weights.close();
    }
  }
  if (!stats?.isFile()) {
    throw notFound(ref);
  }
  const file = await GgufFile.open(path);
  try {
    return { config: await readGgufModelConfig(file), storedBytes: file.tensors.reduce((n, t) => n + t.byteLength, 0) };
  } finally {
    await file.close();
  }
}

/**
 * The tokenizer and chat template of a model reference without reading its weights (null tokenizer for a
 * folder without tokenizer.json): what a stage needs to prepare data for a model it does not run.
 */
export async function loadModelTokenizer(ref: string, options: Pick<LoadModelOptions, 'ollamaModelsDir'> = {}): Promise<Omit<LoadedModel, 'model'>> {
  const path = await localPath(ref, options.ollamaModelsDir);
  const stats = await stat(path).catch(() => undefined);
  if (stats?.isDirectory()) {
    const tokenizer = (await pathExists(join(path, 'tokenizer.json'))) ? await loadTokenizer(path) : null;
    return { tokenizer, chatTemplate: await chatTemplateIn(path) };
  }
  if (!stats?.isFile()) {
    throw notFound(ref);
  }
  const file = await GgufFile.open(path);
  try {
    const tokenizer = tokenizerFromGguf(file.metadata.values(), { source: path });
    return { tokenizer, chatTemplate: tokenizer.chatTemplate };
  } finally {
    await file.close();
  }
}

/** A Hugging Face model directory (config.json + safetensors, tokenizer.json when present). */
export async function loadModelDir(dir: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const tokenizer = (await pathExists(join(dir, 'tokenizer.json'))) ? await loadTokenizer(dir) : null;
  const config = withStopIds((await readHfConfig(dir)).config, [...(await generationConfigEos(dir)), ...(tokenizer?.eosId == null ? [] : [tokenizer.eosId])]);
  const weights = await openHfWeights(dir);
  try {
    checkHfConfig(dir, config, weights);
    const names = new Set(weights.names());
    const source = {
      read: (name: string) => (names.has(name) ? weights.read(name) : Promise.resolve(undefined)),
      readCompact: (name: string) => (names.has(name) ? weights.readCompact(name) : Promise.resolve(undefined)),
    };
    const model = await buildModel(config, source, options, describeModelSize(dir, config.modelType, config), dir);
    return { model, tokenizer, chatTemplate: await chatTemplateIn(dir) };
  } finally {
    weights.close();
  }
}

/** The config with more ids that end a generation. */
function withStopIds(config: ModelConfig, ids: readonly number[]): ModelConfig {
  return { ...config, stopTokenIds: [...new Set([...config.stopTokenIds, ...ids])] };
}

/**
 * generation_config.json's eos_token_id (an id or a list), which transformers' generate() stops at over
 * config.json's; none without the file.
 */
async function generationConfigEos(dir: string): Promise<number[]> {
  const file = join(dir, 'generation_config.json');
  if (!(await pathExists(file))) return [];
  const value = (await readJsonFile(file, (_, detail, cause) => new ModelLoadError(file, 'INVALID_CONFIG', `not JSON (${detail})`, { cause }))) as { eos_token_id?: unknown };
  const ids = value?.eos_token_id === undefined || value.eos_token_id === null ? [] : [value.eos_token_id].flat();
  if (!ids.every((id) => Number.isSafeInteger(id) && (id as number) >= 0)) {
    throw new ModelLoadError(file, 'INVALID_CONFIG', `eos_token_id must be a token id or a list of them, got ${JSON.stringify(value.eos_token_id)}`);
  }
  return ids as number[];
}

function checkHfConfig(dir: string, config: ModelConfig, weights: HfWeights): void {
  const tensors = weights.names().map((name) => ({ name, shape: weights.info(name).shape }));
  const held = { tensors, layerPrefix: 'model.layers.' };
  const problem = layerCountMismatch(config, held, 'num_hidden_layers') ?? parameterCountMismatch(config, held);
  if (problem) throw new ModelLoadError(join(dir, 'config.json'), 'CONFIG_MISMATCH', problem);
}

/** The base model only: a model that Ollama runs with LoRA adapters on top would compute something else. */
async function loadOllamaModel(ref: string, options: LoadModelOptions): Promise<LoadedModel> {
  const resolved = await resolveOllamaModel(ref, { modelsDir: options.ollamaModelsDir });
  if (resolved.adapters.length > 0) {
    throw new ModelLoadError(
      resolved.manifestPath,
      'UNSUPPORTED',
      `${resolved.name} applies ${resolved.adapters.length} LoRA adapter(s) on top of its GGUF, which loading does not support yet`,
    );
  }
  return loadGgufModel(resolved.modelBlob, { build: ggufBuilder(options) });
}

function ggufBuilder(options: LoadModelOptions): ModelBuilder {
  return (config, source, describe, path) => buildModel(config, source, options, describe, path);
}

/** tokenizer_config.json's `chat_template` when it is a string; null without the file or the key. */
async function chatTemplateIn(dir: string): Promise<string | null> {
  const file = join(dir, 'tokenizer_config.json');
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (text === undefined) return null;
  try {
    const template = (JSON.parse(text) as { chat_template?: unknown }).chat_template;
    return typeof template === 'string' ? template : null;
  } catch (error) {
    throw new ModelLoadError(file, 'INVALID_JSON', `not valid JSON (${(error as Error).message})`);
  }
}
