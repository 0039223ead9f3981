/**
 * A Hugging Face model directory: config.json, weights in model.safetensors or in shards listed by
 * model.safetensors.index.json (`{metadata: {total_size}, weight_map: {tensor: shard file}}`), and the
 * tokenizer files. Tensor names and layouts are the model's business; this module moves named tensors, with
 * two exceptions: Phi-3's fused `qkv_proj` and `gate_up_proj` are offered as the separate q/k/v and gate/up
 * projections of a Llama, and a vision-language Gemma 3's text model is offered under a text model's names.
 */
import { lstat, rename } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { ModelConfig } from '../model/config.ts';
import { replaceDirAtomic, writeFileAtomic, writeJsonAtomic } from '../util/atomic.ts';
import { pathExists } from '../util/path-exists.ts';
import { readJsonFile } from '../util/read-json.ts';
import type { CompactTensor } from '../formats/compact-tensor.ts';
import { HfModelDirError, hfConfigJson, modelConfigFromHf } from './hf-config.ts';
import { SafetensorsFile, storedByteLength, writeSafetensors } from '../formats/safetensors.ts';
import type { HostTensor, TensorInfo, WritableDtype } from '../formats/safetensors.ts';

export { HfModelDirError, hfConfigJson };

const CONFIG_FILE = 'config.json';
const SINGLE_WEIGHTS_FILE = 'model.safetensors';
const INDEX_FILE = 'model.safetensors.index.json';
const TOKENIZER_FILE = 'tokenizer.json';
const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
/** transformers' default max_shard_size ("5GB"). */
const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;
/** transformers refuses safetensors whose metadata lacks a known format. */
const SHARD_METADATA = { format: 'pt' };

export async function readHfConfig(dir: string): Promise<{ config: ModelConfig; raw: Record<string, unknown> }> {
  const file = join(dir, CONFIG_FILE);
  const raw = await readJsonObject(file);
  return { config: modelConfigFromHf(raw, file), raw };
}

export interface HfWeights {
  names(): string[];
  info(name: string): TensorInfo;
  read(name: string): Promise<HostTensor>;
  /** The tensor in its stored type (see CompactTensor), for weights that stay compact in host memory. */
  readCompact(name: string): Promise<CompactTensor>;
  close(): Promise<void>;
}

/**
 * Opens the weights of a model directory; each tensor is read from disk only when asked for (a fused Phi-3
 * tensor once for all its parts, when they are asked for one after another as the model does).
 */
export async function openHfWeights(dir: string): Promise<HfWeights> {
  const weights = languageModelOf(await openStoredWeights(dir));
  if (!weights.names().some((name) => FUSED_PATTERN.test(name))) return weights;
  try {
    return splitFused(weights, (await readHfConfig(dir)).config, dir);
  } catch (error) {
    await weights.close();
    throw error;
  }
}

async function openStoredWeights(dir: string): Promise<HfWeights> {
  const indexPath = join(dir, INDEX_FILE);
  if (await pathExists(indexPath)) return openShards(dir, indexPath);
  const single = join(dir, SINGLE_WEIGHTS_FILE);
  if (!(await pathExists(single))) {
    throw new HfModelDirError(dir, 'MISSING_WEIGHTS', `neither ${SINGLE_WEIGHTS_FILE} nor ${INDEX_FILE} is in the directory`);
  }
  const file = await SafetensorsFile.open(single);
  return weightsOver(new Map(file.names().map((name) => [name, file])), [file]);
}

async function openShards(dir: string, indexPath: string): Promise<HfWeights> {
  const weightMap = parseWeightMap(indexPath, await readJsonObject(indexPath));
  const shards = new Map<string, SafetensorsFile>();
  try {
    for (const shardName of new Set(weightMap.values())) {
      const path = join(dir, shardName);
      if (!(await pathExists(path))) {
        throw new HfModelDirError(indexPath, 'MISSING_SHARD', `lists shard '${shardName}', which is not in ${dir}`);
      }
      shards.set(shardName, await SafetensorsFile.open(path));
    }
    const location = new Map<string, SafetensorsFile>();
    for (const [tensor, shardName] of weightMap) {
      const shard = shards.get(shardName)!;
      if (!shard.has(tensor)) {
        throw new HfModelDirError(indexPath, 'MISSING_TENSOR', `lists tensor '${tensor}' in '${shardName}', which does not contain it`);
      }
      location.set(tensor, shard);
    }
    return weightsOver(location, [...shards.values()]);
  } catch (error) {
    await Promise.all([...shards.values()].map((shard) => shard.close()));
    throw error;
  }
}

function parseWeightMap(indexPath: string, index: Record<string, unknown>): Map<string, string> {
  const weightMap = index.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new HfModelDirError(indexPath, 'INVALID_INDEX', 'weight_map must be an object mapping tensor names to shard files');
  }
  const entries = Object.entries(weightMap);
  for (const [tensor, shard] of entries) {
    // shard names are plain file names in the same directory; anything else could point outside it
    if (typeof shard !== 'string' || basename(shard) !== shard || shard === '.' || shard === '..') {
      throw new HfModelDirError(indexPath, 'INVALID_INDEX', `weight_map['${tensor}'] must be a file name in the directory, got ${JSON.stringify(shard)}`);
    }
  }
  return new Map(entries as [string, string][]);
}

function weightsOver(location: Map<string, SafetensorsFile>, files: SafetensorsFile[]): HfWeights {
  const fileOf = (name: string): SafetensorsFile => {
    const file = location.get(name);
    if (!file) throw new HfModelDirError(files[0]?.path ?? '(no weights)', 'NOT_FOUND', `no tensor named '${name}'`);
    return file;
  };
  return {
    names: () => [...location.keys()],
    info: (name) => fileOf(name).info(name),
    read: async (name) => {
      const file = fileOf(name);
      return { name, shape: file.info(name).shape, data: await file.read(name) };
    },
    readCompact: (name) => fileOf(name).readCompact(name),
    close: async () => {
      await Promise.all(files.map((file) => file.close()));
    },
  };
}

// ---------------------------------------------------------------- a vision-language model's text model

/**
 * Where a vision-language checkpoint keeps its text model (Gemma 3 4B and up: `language_model.model.*` as
 * the hub stores it, `model.language_model.*` as transformers 4.52+ saves it), and the text model's names.
 */
const LANGUAGE_MODEL_PREFIXES: [stored: string, text: string][] = [
  ['language_model.model.', 'model.'],
  ['language_model.lm_head.', 'lm_head.'],
  ['model.language_model.', 'model.'],
];

/** `weights` as its text model alone when it holds a vision-language model; as they are otherwise. */
function languageModelOf(weights: HfWeights): HfWeights {
  const stored = new Map<string, string>(); // text name -> stored name
  for (const name of weights.names()) {
    const prefix = LANGUAGE_MODEL_PREFIXES.find(([from]) => name.startsWith(from));
    if (prefix) stored.set(prefix[1] + name.slice(prefix[0].length), name);
  }
  if (stored.size === 0) return weights;
  const storedName = (name: string) => stored.get(name) ?? name;
  return {
    names: () => [...stored.keys()],
    info: (name) => weights.info(storedName(name)),
    read: async (name) => ({ ...(await weights.read(storedName(name))), name }),
    readCompact: (name) => weights.readCompact(storedName(name)),
    close: () => weights.close(),
  };
}

// ---------------------------------------------------------------- Phi-3's fused projections

const FUSED_PATTERN = /^(.*\.)(self_attn\.qkv_proj|mlp\.gate_up_proj)\.weight$/;

/** A part of a fused tensor: its rows [start, end). */
interface FusedPart {
  fused: string;
  rows: [start: number, end: number];
}

/** qkv_proj [(H+2KVH)*hd, d] holds q, k, v rows in that order; gate_up_proj [2F, d] gate rows, then up rows. */
function fusedParts(fused: string, config: ModelConfig): [name: string, part: FusedPart][] {
  const [, prefix, kind] = FUSED_PATTERN.exec(fused)!;
  const { numHeads, numKvHeads, headDim, intermediateSize: f } = config;
  const [q, kv] = [numHeads * headDim, numKvHeads * headDim];
  const rows: [string, [number, number]][] =
    kind === 'mlp.gate_up_proj'
      ? [['mlp.gate_proj', [0, f]], ['mlp.up_proj', [f, 2 * f]]]
      : [['self_attn.q_proj', [0, q]], ['self_attn.k_proj', [q, q + kv]], ['self_attn.v_proj', [q + kv, q + 2 * kv]]];
  return rows.map(([name, range]) => [`${prefix}${name}.weight`, { fused, rows: range }]);
}

/** `weights` with each fused tensor replaced by its parts; the shape of each fused tensor is checked against `config`. */
function splitFused(weights: HfWeights, config: ModelConfig, dir: string): HfWeights {
  const parts = new Map<string, FusedPart>();
  for (const name of weights.names().filter((n) => FUSED_PATTERN.test(n))) {
    const split = fusedParts(name, config);
    const expected = [split[split.length - 1][1].rows[1], config.hiddenSize];
    const actual = weights.info(name).shape;
    if (actual.join() !== expected.join()) {
      throw new HfModelDirError(dir, 'WRONG_SHAPE', `tensor '${name}' has shape [${actual}], but config.json implies [${expected}]`);
    }
    for (const [partName, part] of split) parts.set(partName, part);
  }
  const fusedNames = new Set([...parts.values()].map((part) => part.fused));
  let held: { name: string; data: Float32Array } | null = null;
  let heldCompact: { name: string; tensor: CompactTensor } | null = null;
  const partInfo = (part: FusedPart): TensorInfo => {
    const info = weights.info(part.fused);
    const rows = part.rows[1] - part.rows[0];
    return { ...info, shape: [rows, info.shape[1]], byteLength: (info.byteLength / info.shape[0]) * rows };
  };
  return {
    names: () => [...weights.names().filter((name) => !fusedNames.has(name)), ...parts.keys()],
    info: (name) => {
      const part = parts.get(name);
      return part ? partInfo(part) : weights.info(name);
    },
    read: async (name) => {
      const part = parts.get(name);
      if (!part) return weights.read(name);
      if (held?.name !== part.fused) held = { name: part.fused, data: (await weights.read(part.fused)).data };
      const [start, end] = part.rows;
      const cols = config.hiddenSize;
      const data = held.data.slice(start * cols, end * cols);
      if (end * cols === held.data.length) held = null;
      return { name, shape: [end - start, cols], data };
    },
    readCompact: async (name) => {
      const part = parts.get(name);
      if (!part) return weights.readCompact(name);
      if (heldCompact?.name !== part.fused) heldCompact = { name: part.fused, tensor: await weights.readCompact(part.fused) };
      const tensor = heldCompact.tensor.sliceRows(...part.rows);
      if (part.rows[1] === heldCompact.tensor.rows) heldCompact = null;
      return tensor;
    },
    close: () => weights.close(),
  };
}

// ---------------------------------------------------------------- writing

export interface WriteHfModelDirOptions {
  config: ModelConfig;
  /** Written in this order; consumed once, so a generator can produce them one at a time. */
  tensors: Iterable<HostTensor> | AsyncIterable<HostTensor>;
  dtype: WritableDtype;
  tokenizerJson?: string;
  tokenizerConfig?: Record<string, unknown>;
  /** Tensor bytes per shard file before a new one starts (a larger single tensor gets a shard alone). */
  maxShardBytes?: number;
}

/** Writes a complete model directory, or leaves the existing one untouched (see replaceDirAtomic). */
export async function writeHfModelDir(dir: string, options: WriteHfModelDirOptions): Promise<void> {
  const target = resolve(dir);
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShardBytes > 0)) throw new HfModelDirError(target, 'INVALID_ARGUMENT', `maxShardBytes must be positive, got ${maxShardBytes}`);
  const configJson = hfConfigJson(options.config, options.dtype);
  await refuseNonDirectory(target);
  await replaceDirAtomic(target, async (staging) => {
    await writeJsonAtomic(join(staging, CONFIG_FILE), configJson);
    if (options.tokenizerJson !== undefined) await writeFileAtomic(join(staging, TOKENIZER_FILE), options.tokenizerJson);
    if (options.tokenizerConfig !== undefined) await writeJsonAtomic(join(staging, TOKENIZER_CONFIG_FILE), options.tokenizerConfig);
    await writeWeights(staging, target, options.tensors, options.dtype, maxShardBytes);
  });
}

interface WrittenShard {
  tempName: string;
  tensorNames: string[];
}

/**
 * Fills shards in tensor order, holding at most one shard's tensors at a time. The final names need the
 * shard count, so shards get temporary names until the last one is written.
 */
async function writeWeights(
  staging: string,
  target: string,
  tensors: Iterable<HostTensor> | AsyncIterable<HostTensor>,
  dtype: WritableDtype,
  maxShardBytes: number,
): Promise<void> {
  const shards: WrittenShard[] = [];
  const seen = new Set<string>();
  let pending: HostTensor[] = [];
  let pendingBytes = 0;
  let totalBytes = 0;
  const flush = async () => {
    const tempName = `shard-${shards.length + 1}.partial`;
    await writeSafetensors(join(staging, tempName), pending, { dtype, metadata: SHARD_METADATA });
    shards.push({ tempName, tensorNames: pending.map((tensor) => tensor.name) });
    pending = [];
    pendingBytes = 0;
  };

  for await (const tensor of tensors) {
    if (seen.has(tensor.name)) throw new HfModelDirError(target, 'DUPLICATE_TENSOR', `tensor '${tensor.name}' is given twice`);
    seen.add(tensor.name);
    const bytes = storedByteLength(tensor.shape, dtype);
    if (pending.length > 0 && pendingBytes + bytes > maxShardBytes) await flush();
    pending.push(tensor);
    pendingBytes += bytes;
    totalBytes += bytes;
  }
  if (pending.length > 0 || shards.length === 0) await flush();

  if (shards.length === 1) {
    await rename(join(staging, shards[0].tempName), join(staging, SINGLE_WEIGHTS_FILE));
    return;
  }
  const weightMap: Record<string, string> = {};
  for (const [i, shard] of shards.entries()) {
    const name = shardFileName(i + 1, shards.length);
    await rename(join(staging, shard.tempName), join(staging, name));
    for (const tensorName of shard.tensorNames) weightMap[tensorName] = name;
  }
  await writeJsonAtomic(join(staging, INDEX_FILE), { metadata: { total_size: totalBytes }, weight_map: weightMap });
}

/** transformers' shard naming: model-00001-of-00003.safetensors. */
function shardFileName(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(index)}-of-${pad(count)}.safetensors`;
}

async function refuseNonDirectory(target: string): Promise<void> {
  const stats = await lstat(target).catch(() => undefined);
  if (stats && !stats.isDirectory()) {
    throw new HfModelDirError(target, 'NOT_A_DIRECTORY', 'exists and is not a directory; refusing to replace it');
  }
}

// ---------------------------------------------------------------- small helpers

async function readJsonObject(file: string): Promise<Record<string, unknown>> {
  const codes = { missing: 'MISSING_FILE', unreadable: 'IO', invalid: 'INVALID_JSON' } as const;
  const json = await readJsonFile(file, (problem, detail, cause) => new HfModelDirError(file, codes[problem], detail, { cause }));
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new HfModelDirError(file, 'INVALID_JSON', 'must hold a JSON object');
  }
  return json as Record<string, unknown>;
}
