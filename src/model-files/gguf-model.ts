/**
 * Llama-family models in GGUF files: loading one into a CausalLM (and its tokenizer), and writing a CausalLM
 * as a GGUF that llama.cpp runs with the same probabilities. The config mapping lives in gguf-model-config.ts,
 * tensor names and layouts in gguf-tensors.ts, Llama 3 rope factors in gguf-rope-factors.ts, the tokenizer
 * metadata in gguf-vocab.ts.
 */
import { CausalLM } from '../model/causal-lm.ts';
import { describeModelSize, layerCountMismatch, type ModelConfig } from '../model/config.ts';
import { FormatError } from '../formats/format-error.ts';
import { parameterSpecs } from '../model/parameters.ts';
import { tokenizerFromGguf } from '../tokenizer/gguf-tokenizer.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { GGML_QUANT_VERSION, GGUF_KEY } from '../formats/gguf/constants.ts';
import { GgufFile } from '../formats/gguf/reader.ts';
import { GgufWriter } from '../formats/gguf/writer.ts';
import {
  ggufArchitectureOf,
  ggufHyperparameters,
  ggufModelConfig,
  GgufModelError,
  type ExportedGgufArchitecture,
  type SupportedGgufArchitecture,
} from './gguf-model-config.ts';
import { llama3RopeFactors } from './gguf-rope-factors.ts';
import { CompactTensor, isCompactType } from '../formats/compact-tensor.ts';
import {
  deinterleavedRowOrder,
  fromGgufLayout,
  ggufTensorName,
  ROPE_FREQS_TENSOR,
  tensorSources,
  toGgufLayout,
  type TensorSource,
} from './gguf-tensors.ts';
import { ggufTokenizerMetadata, type GgufExportTokenizer } from './gguf-vocab.ts';
import { GGUF_EXPORT_TYPES, storageTypes, type GgufExportType } from '../formats/gguf-quant-mix.ts';
import type { HostTensor } from '../formats/safetensors.ts';

export { ggufModelConfig, GgufModelError, SUPPORTED_GGUF_ARCHITECTURES } from './gguf-model-config.ts';
export type { GgufExportTokenizer } from './gguf-vocab.ts';
export type { GgufExportType } from '../formats/gguf-quant-mix.ts';

export interface GgufModel {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** `tokenizer.chat_template` (Jinja), or null when the file has none. */
  chatTemplate: string | null;
  config: ModelConfig;
}

/** Reads of one parameter by its Hugging Face name: as float32, or in the file's stored type. */
export interface ModelTensorSource {
  read(name: string): Promise<HostTensor | undefined>;
  readCompact(name: string): Promise<CompactTensor | undefined>;
}

/** Makes the model from its config and tensor source; `describe` is a line on its size for the log, `path` the file. */
export type ModelBuilder = (config: ModelConfig, source: ModelTensorSource, describe: string, path: string) => Promise<CausalLM>;

export interface LoadGgufOptions {
  /** Told the memory the model will take before any weight is read (by the default builder). */
  logger?: { info(message: string): void };
  /** How the weights are held; default: every weight as a float32 variable. */
  build?: ModelBuilder;
}

/** The config of a GGUF model file, read from its metadata and tensor list (and `rope_freqs` when present). */
export async function readGgufModelConfig(file: GgufFile): Promise<ModelConfig> {
  const tensorNames = new Set(file.tensorNames());
  const ropeFactors = tensorNames.has(ROPE_FREQS_TENSOR) ? await file.readTensor(ROPE_FREQS_TENSOR) : null;
  const config = ggufModelConfig(file.metadata, { file: file.path, tensorNames, ropeFactors });
  const arch = file.metadata.getString(GGUF_KEY.GENERAL_ARCHITECTURE);
  // Every tensor's shape is checked against the config before any is read (checkTensors); the layer count
  // first, since it decides how many tensors that check lists.
  const problem = layerCountMismatch(config, { tensors: file.tensors, layerPrefix: 'blk.' }, `${arch}.block_count`);
  if (problem) throw new FormatError(file.path, 'CONFIG_MISMATCH', problem);
  return config;
}

/**
 * Loads a GGUF model, dequantizing one tensor at a time to float32 (phi3's fused tensors are read once
 * and split). Every tensor's presence and shape is checked before the first weight is read.
 */
export async function loadGgufModel(path: string, options: LoadGgufOptions = {}): Promise<GgufModel> {
  const file = await GgufFile.open(path);
  try {
    const config = await readGgufModelConfig(file);
    const arch = file.metadata.getString(GGUF_KEY.GENERAL_ARCHITECTURE) as SupportedGgufArchitecture;
    const tokenizer = tokenizerFromGguf(file.metadata.values(), { source: path });
    const sources = tensorSources(config, arch, file.hasTensor('blk.0.attn_qkv.weight'));
    checkTensors(file, sources, arch);
    const describe = describeModelSize(path, arch, config);
    const build: ModelBuilder =
      options.build ??
      ((cfg, source) => {
        options.logger?.info(describe);
        return CausalLM.fromHfTensors(cfg, (name) => source.read(name));
      });
    const model = await build(config, { read: readerOver(file, sources), readCompact: compactReaderOver(file, sources) }, describe, path);
    return { model, tokenizer, chatTemplate: tokenizer.chatTemplate, config };
  } finally {
    await file.close();
  }
}


export interface ExportGgufOptions {
  /** Storage of the 2-D weights (see gguf-quant-mix.ts); norms, biases and rope factors stay F32, as llama.cpp keeps them. */
  type: GgufExportType;
  /** `general.name`. */
  name?: string;
  /** The tensors to write in Hugging Face layout, one at a time (a merged adapter's); the model's by default. */
  tensors?: Iterable<HostTensor>;
}


/**
 * Writes `model` as a GGUF file that llama.cpp loads: arch `llama` (`qwen2` for a Qwen2 that llama.cpp's qwen2
 * can hold, `qwen3` for a model with q/k norms), the keys it reads, the tokenizer converted from tokenizer.json,
 * and the weights in its layout.
 */
export async function exportGguf(model: CausalLM, tokenizer: GgufExportTokenizer, path: string, options: ExportGgufOptions): Promise<void> {
  const config = model.config;
  const arch = ggufArchitectureOf(config);
  const unnamed = parameterSpecs(config).find((spec) => ggufTensorName(spec.name, config) === undefined);
  if (unnamed) {
    const detail = `parameter '${unnamed.name}' has no GGUF tensor this exporter writes`;
    throw new GgufModelError(path, 'UNSUPPORTED', detail);
  }
  const writer = new GgufWriter(path);
  writer.addString(GGUF_KEY.GENERAL_ARCHITECTURE, arch);
  writer.addString(GGUF_KEY.GENERAL_NAME, options.name ?? 'slm-train model');
  writer.addUint32(GGUF_KEY.GENERAL_FILE_TYPE, GGUF_EXPORT_TYPES[options.type].fileType);
  writer.addUint32(GGUF_KEY.GENERAL_QUANTIZATION_VERSION, GGML_QUANT_VERSION);
  for (const [key, value] of ggufHyperparameters(config)) writer.add(key, value);
  for (const [key, value] of ggufTokenizerMetadata(tokenizer, config.vocabSize)) writer.add(key, value);

  const ropeFactors = ropeFactorsTensor(config);
  const infos = [
    ...(ropeFactors ? [{ name: ROPE_FREQS_TENSOR, shape: ropeFactors.shape }] : []),
    ...parameterSpecs(config).map((spec) => ({ name: ggufTensorName(spec.name, config)!, shape: spec.hfShape })),
  ];
  const types = storageTypes(options.type, infos, config.numLayers);
  for (const { name, shape } of infos) writer.addTensorInfo(name, shape, types.get(name)!);
  await writer.write(ggufTensors(options.tensors ?? model.eachHfTensor(), ropeFactors, config, arch));
}

/** llama.cpp reads Llama 3 rope scaling from a tensor of per-frequency factors; null without scaling. */
function ropeFactorsTensor(config: ModelConfig): HostTensor | null {
  if (config.ropeScaling?.ropeType !== 'llama3') return null;
  const factors = Float32Array.from(llama3RopeFactors(config.ropeScaling, config.headDim, config.ropeTheta));
  return { name: ROPE_FREQS_TENSOR, shape: [factors.length], data: factors };
}

/** The tensors under their GGUF names and in llama.cpp's layout, rope factors first as the converter writes them. */
function* ggufTensors(tensors: Iterable<HostTensor>, ropeFactors: HostTensor | null, config: ModelConfig, arch: ExportedGgufArchitecture): Generator<HostTensor> {
  if (ropeFactors) yield ropeFactors;
  for (const tensor of tensors) yield toGgufLayout(tensor, config, arch);
}

// ---- loading helpers ------------------------------------------------------------------------------------

/** A Gemma 3 GGUF as Ollama stores gemma3:4b and up: its vision tower (`v.*`) and projector (`mm.*`), which the text model leaves out. */
const VISION_TENSOR = /^(v|mm)\./;

/** Missing tensors, wrong shapes and tensors the model would ignore, reported before anything is read. */
function checkTensors(file: GgufFile, sources: Map<string, TensorSource>, arch: SupportedGgufArchitecture): void {
  const needed = new Map([...sources.values()].map((source) => [source.gguf, source.shape]));
  for (const [name, shape] of needed) {
    if (!file.hasTensor(name)) {
      throw new GgufModelError(file.path, 'MISSING_TENSOR', `tensor '${name}' (shape [${shape}]) is missing; the metadata implies it`);
    }
    const actual = file.tensorInfo(name).shape;
    if (actual.join() !== shape.join()) {
      throw new GgufModelError(file.path, 'WRONG_SHAPE', `tensor '${name}' has shape [${actual}], but the metadata implies [${shape}]`);
    }
  }
  const known = new Set([...needed.keys(), ...(arch === 'llama' ? [ROPE_FREQS_TENSOR] : [])]);
  const unused = file.tensorNames().filter((name) => !known.has(name) && !(arch === 'gemma3' && VISION_TENSOR.test(name)));
  if (unused.length > 0) {
    const shown = unused.slice(0, 5).map((name) => `'${name}'`).join(', ');
    throw new GgufModelError(
      file.path,
      'UNSUPPORTED_TENSORS',
      `tensors this model has no place for: ${shown}${unused.length > 5 ? ` and ${unused.length - 5} more` : ''} (a ${arch} variant it cannot run)`,
    );
  }
}

/**
 * Reads each parameter in the GGUF tensor's own type: rows of whole blocks, so phi3's fused parts are row
 * ranges and llama's interleaved q/k rows are reordered without decoding.
 */
function compactReaderOver(file: GgufFile, sources: Map<string, TensorSource>) {
  let held: { name: string; tensor: CompactTensor } | null = null;
  return async (hfName: string): Promise<CompactTensor | undefined> => {
    const source = sources.get(hfName);
    if (!source) return undefined;
    if (held?.name !== source.gguf) held = { name: source.gguf, tensor: await readCompactTensor(file, source) };
    const whole = held.tensor;
    if (!source.rows) held = null;
    const rows = source.rows ? whole.sliceRows(...source.rows) : whole;
    if (source.storedOffset) return CompactTensor.fromFloat32(source.shape, fromGgufLayout(rows.toFloat32(), source));
    return source.interleavedHeads ? rows.reorderRows(deinterleavedRowOrder(rows.rows, source.interleavedHeads)) : rows;
  };
}

async function readCompactTensor(file: GgufFile, source: TensorSource): Promise<CompactTensor> {
  const { type } = file.tensorInfo(source.gguf);
  const bytes = await file.readTensorBytes(source.gguf);
  if (!isCompactType(type)) throw new GgufModelError(file.path, 'UNSUPPORTED', `tensor '${source.gguf}' has type ${type}, which cannot be decoded`);
  return new CompactTensor(type, source.shape, bytes);
}

/** Reads each parameter from its GGUF tensor; a fused tensor is kept until its last part has been taken. */
function readerOver(file: GgufFile, sources: Map<string, TensorSource>) {
  let held: { name: string; data: Float32Array } | null = null;
  return async (hfName: string): Promise<HostTensor | undefined> => {
    const source = sources.get(hfName);
    if (!source) return undefined;
    if (held?.name !== source.gguf) held = { name: source.gguf, data: await file.readTensor(source.gguf) };
    const data = fromGgufLayout(held.data, source);
    if (!source.rows) held = null;
    const rows = source.rows ? source.rows[1] - source.rows[0] : source.shape[0];
    return { name: hfName, shape: source.shape.length > 1 ? [rows, source.shape[1]] : [rows], data };
  };
}
