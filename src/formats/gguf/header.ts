/**
 * Parses everything in a GGUF file before the tensor data: magic, version, counts, metadata, tensor infos.
 * Pure over the bytes given; every count, length and offset is checked against the file size before it is
 * used, so corrupt input ends in a GgufError that says what is wrong and where.
 */
import { ByteReader } from './byte-reader.ts';
import {
  GGML_BLOCK_LAYOUT,
  GGML_MAX_DIMS,
  GGML_MAX_TENSOR_NAME_BYTES,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_KEY,
  GGUF_MAGIC_BYTES,
  GGUF_MAX_KEY_BYTES,
  GGUF_READABLE_VERSIONS,
  GGUF_VALUE_BYTES,
  ggmlTypeName,
  ggufValueTypeName,
} from './constants.ts';
import type { GgmlTypeName, GgufValueTypeName, GgufVersion } from './constants.ts';
import { GgufError } from './gguf-error.ts';
import { alignOffset, shapeFromDims, tensorByteLength } from './layout.ts';
import { describeType } from './metadata.ts';
import type { GgufArray, GgufNumberType, GgufValue } from './metadata.ts';

export interface GgufTensorInfo {
  readonly name: string;
  readonly type: GgmlTypeName;
  /** GGUF order: the fastest-varying dimension first. */
  readonly dims: readonly number[];
  /** Row-major (PyTorch) order: `dims` reversed. */
  readonly shape: readonly number[];
  readonly elementCount: number;
  readonly byteLength: number;
  /** Start of the data, relative to the data section. */
  readonly offset: number;
  /** Start of the data in the file. */
  readonly fileOffset: number;
}

export interface GgufHeader {
  version: GgufVersion;
  alignment: number;
  metadata: Map<string, GgufValue>;
  /** In file order. */
  tensors: GgufTensorInfo[];
  /** File offset of the data section. */
  dataOffset: number;
}

/** Arrays of arrays are legal; deeper nesting than this is taken for corruption (ggml accepts none). */
const MAX_ARRAY_DEPTH = 4;
/** The smallest possible key/value: a 1-byte key (8 + 1), the type (4) and a 1-byte value. */
const MIN_KV_BYTES = 8 + 1 + 4 + 1;
/** The smallest possible tensor info: a 1-byte name (8 + 1), n_dims (4), type (4), offset (8). */
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 4 + 8;
/** The smallest possible array header inside an array: item type (4) and length (8). */
const MIN_ARRAY_BYTES = 4 + 8;

/** `bytes` is a prefix of the file at `path`, which is `fileSize` bytes long. Throws NeedMoreBytes if it is too short. */
export function parseGgufHeader(path: string, bytes: Uint8Array, fileSize: number): GgufHeader {
  const reader = new ByteReader(path, bytes, fileSize);
  checkMagic(reader);
  const version = readVersion(reader);
  const tensorCount = reader.count('tensor count', MIN_TENSOR_INFO_BYTES);
  const kvCount = reader.count('metadata count', MIN_KV_BYTES);
  const metadata = readMetadata(reader, kvCount);
  const alignment = alignmentOf(path, metadata);
  const tensors: Omit<GgufTensorInfo, 'fileOffset'>[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const info = readTensorInfo(reader, i, alignment);
    if (names.has(info.name)) throw new GgufError(path, 'DUPLICATE_TENSOR', `tensor name '${info.name}' appears more than once`);
    names.add(info.name);
    tensors.push(info);
  }
  // ggml pads to the alignment only when there is data to align
  const dataOffset = tensorCount > 0 ? alignOffset(reader.position, alignment) : reader.position;
  const located = tensors.map((info) => Object.freeze({ ...info, fileOffset: dataOffset + info.offset }));
  checkDataLayout(path, located, fileSize);
  return { version, alignment, metadata, tensors: located, dataOffset };
}

function checkMagic(reader: ByteReader): void {
  const magic = reader.copy(4, 'the magic');
  if (!GGUF_MAGIC_BYTES.every((byte, i) => magic[i] === byte)) {
    const shown = [...magic].map((byte) => (byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : '?')).join('');
    throw new GgufError(reader.path, 'NOT_GGUF', `not a GGUF file: it starts with '${shown}' instead of 'GGUF'`);
  }
}

function readVersion(reader: ByteReader): GgufVersion {
  const version = reader.u32('the version');
  if ((GGUF_READABLE_VERSIONS as readonly number[]).includes(version)) return version as GgufVersion;
  const readable = `readable: ${GGUF_READABLE_VERSIONS.join(', ')}`;
  if (version === 1) {
    throw new GgufError(reader.path, 'UNSUPPORTED_VERSION', `GGUF version 1 (32-bit counts) is not supported (${readable}); re-convert the model`);
  }
  // a big-endian file's small version number lands in the high bytes of a little-endian read
  if (version !== 0 && (version & 0xffff) === 0) {
    throw new GgufError(
      reader.path,
      'BIG_ENDIAN',
      `the version reads as 0x${version.toString(16).padStart(8, '0')}: this is a big-endian GGUF file (version ${byteSwap32(version)}), and only little-endian files are supported`,
    );
  }
  throw new GgufError(reader.path, 'UNSUPPORTED_VERSION', `GGUF version ${version} is not supported (${readable})`);
}

function byteSwap32(value: number): number {
  return (((value & 0xff) << 24) | ((value & 0xff00) << 8) | ((value >>> 8) & 0xff00) | (value >>> 24)) >>> 0;
}

// ---------------------------------------------------------------- metadata

function readMetadata(reader: ByteReader, count: number): Map<string, GgufValue> {
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < count; i++) {
    const key = readKey(reader, i);
    if (metadata.has(key)) throw new GgufError(reader.path, 'DUPLICATE_KEY', `metadata key '${key}' appears more than once`);
    const type = readValueType(reader, `value type of '${key}'`);
    metadata.set(key, readValue(reader, type, key, 0));
  }
  return metadata;
}

function readKey(reader: ByteReader, index: number): string {
  const start = reader.position;
  const key = reader.string(`key of metadata entry ${index}`);
  const byteLength = reader.position - start - 8;
  if (byteLength === 0 || byteLength > GGUF_MAX_KEY_BYTES) {
    throw new GgufError(
      reader.path,
      'INVALID_KEY',
      `key of metadata entry ${index} at byte ${start} is ${byteLength} bytes long, expected 1..${GGUF_MAX_KEY_BYTES}`,
    );
  }
  return key;
}

function readValueType(reader: ByteReader, what: string): GgufValueTypeName {
  const at = reader.position;
  const id = reader.u32(what);
  const type = ggufValueTypeName(id);
  if (type === undefined) throw new GgufError(reader.path, 'UNKNOWN_VALUE_TYPE', `${what} at byte ${at} is ${id}, which is no GGUF value type (0..12)`);
  return type;
}

function readValue(reader: ByteReader, type: GgufValueTypeName, key: string, depth: number): GgufValue {
  const what = `value of '${key}'`;
  switch (type) {
    case 'STRING':
      return { type, value: reader.string(what) };
    case 'ARRAY':
      return readArray(reader, key, depth);
    case 'BOOL':
      return { type, value: readBool(reader, what) };
    case 'UINT64':
    case 'INT64':
      return { type, value: reader.scalar(type, what) as bigint };
    default:
      return { type, value: reader.scalar(type, what) as number };
  }
}

function readBool(reader: ByteReader, what: string): boolean {
  const at = reader.position;
  const byte = reader.scalar('BOOL', what) as number;
  if (byte > 1) throw new GgufError(reader.path, 'INVALID_BOOL', `${what} at byte ${at} is ${byte}, but a bool must be 0 or 1`);
  return byte === 1;
}

function readArray(reader: ByteReader, key: string, depth: number): GgufArray {
  const itemType = readValueType(reader, `item type of array '${key}'`);
  if (itemType === 'ARRAY' && depth + 1 >= MAX_ARRAY_DEPTH) {
    throw new GgufError(reader.path, 'ARRAY_TOO_DEEP', `array '${key}' nests arrays more than ${MAX_ARRAY_DEPTH} deep`);
  }
  const itemBytes = itemType === 'STRING' ? 8 : itemType === 'ARRAY' ? MIN_ARRAY_BYTES : GGUF_VALUE_BYTES[itemType];
  const length = reader.count(`length of array '${key}'`, itemBytes);
  const what = `items of array '${key}'`;
  switch (itemType) {
    case 'STRING':
      return { type: 'ARRAY', itemType, value: repeat(length, () => reader.string(what)) };
    case 'ARRAY':
      return { type: 'ARRAY', itemType, value: repeat(length, () => readArray(reader, key, depth + 1)) };
    case 'BOOL':
      return { type: 'ARRAY', itemType, value: repeat(length, () => readBool(reader, what)) };
    case 'UINT64':
      return { type: 'ARRAY', itemType, value: new BigUint64Array(reader.copy(length * 8, what).buffer) };
    case 'INT64':
      return { type: 'ARRAY', itemType, value: new BigInt64Array(reader.copy(length * 8, what).buffer) };
    default:
      return { type: 'ARRAY', itemType, value: numberArray(itemType, reader.copy(length * itemBytes, what).buffer) };
  }
}

/**
 * `length` results of `read`, grown one by one: a corrupt length then costs memory only for the items that
 * were actually read, never an up-front allocation of its full size.
 */
function repeat<T>(length: number, read: () => T): T[] {
  const items: T[] = [];
  for (let i = 0; i < length; i++) items.push(read());
  return items;
}

/** Typed arrays take the host's byte order, little-endian wherever this project runs (as in safetensors.ts). */
function numberArray(type: GgufNumberType, buffer: ArrayBufferLike) {
  switch (type) {
    case 'UINT8':
      return new Uint8Array(buffer);
    case 'INT8':
      return new Int8Array(buffer);
    case 'UINT16':
      return new Uint16Array(buffer);
    case 'INT16':
      return new Int16Array(buffer);
    case 'UINT32':
      return new Uint32Array(buffer);
    case 'INT32':
      return new Int32Array(buffer);
    case 'FLOAT32':
      return new Float32Array(buffer);
    case 'FLOAT64':
      return new Float64Array(buffer);
  }
}

function alignmentOf(path: string, metadata: Map<string, GgufValue>): number {
  const entry = metadata.get(GGUF_KEY.GENERAL_ALIGNMENT);
  if (entry === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (entry.type !== 'UINT32') {
    throw new GgufError(path, 'INVALID_ALIGNMENT', `${GGUF_KEY.GENERAL_ALIGNMENT} must be a UINT32, but it is ${describeType(entry)}`);
  }
  const alignment = entry.value;
  if (alignment === 0 || (alignment & (alignment - 1)) !== 0) {
    throw new GgufError(path, 'INVALID_ALIGNMENT', `${GGUF_KEY.GENERAL_ALIGNMENT} is ${alignment}, which is not a power of two`);
  }
  return alignment;
}

// ---------------------------------------------------------------- tensor infos

function readTensorInfo(reader: ByteReader, index: number, alignment: number): Omit<GgufTensorInfo, 'fileOffset'> {
  const name = readTensorName(reader, index);
  const fail = (code: string, detail: string) => new GgufError(reader.path, code, `tensor '${name}': ${detail}`);
  const dims = readDims(reader, name);
  const elementCount = dims.reduce((product, dim) => product * dim, 1);
  const typeAt = reader.position;
  const typeId = reader.u32(`type of tensor '${name}'`);
  const type = ggmlTypeName(typeId);
  if (type === undefined) throw fail('UNKNOWN_TENSOR_TYPE', `type id ${typeId} at byte ${typeAt} is no GGML type a GGUF file can hold`);
  const { blockSize } = GGML_BLOCK_LAYOUT[type];
  if (dims.length > 0 && dims[0] % blockSize !== 0) {
    throw fail('INVALID_SHAPE', `rows of ${dims[0]} values are not a whole number of ${type} blocks of ${blockSize}`);
  }
  if (dims.length === 0 && blockSize !== 1) throw fail('INVALID_SHAPE', `a scalar cannot be stored as ${type}`);
  const offsetAt = reader.position;
  const offset = reader.u64(`data offset of tensor '${name}'`);
  if (offset > BigInt(reader.fileSize)) {
    throw fail('TENSOR_OUT_OF_FILE', `data offset ${offset} at byte ${offsetAt} lies beyond the end of the file (${reader.fileSize} bytes)`);
  }
  if (Number(offset) % alignment !== 0) throw fail('MISALIGNED_TENSOR', `data offset ${offset} is not a multiple of the alignment ${alignment}`);
  return {
    name,
    type,
    dims: Object.freeze(dims),
    shape: Object.freeze(shapeFromDims(dims)),
    elementCount,
    byteLength: tensorByteLength(type, elementCount),
    offset: Number(offset),
  };
}

function readTensorName(reader: ByteReader, index: number): string {
  const start = reader.position;
  const name = reader.string(`name of tensor ${index}`);
  const byteLength = reader.position - start - 8;
  if (byteLength === 0 || byteLength > GGML_MAX_TENSOR_NAME_BYTES) {
    throw new GgufError(
      reader.path,
      'INVALID_TENSOR_NAME',
      `name of tensor ${index} at byte ${start} is ${byteLength} bytes long, expected 1..${GGML_MAX_TENSOR_NAME_BYTES}`,
    );
  }
  return name;
}

function readDims(reader: ByteReader, name: string): number[] {
  const at = reader.position;
  const count = reader.u32(`dimension count of tensor '${name}'`);
  if (count > GGML_MAX_DIMS) {
    throw new GgufError(reader.path, 'TOO_MANY_DIMS', `tensor '${name}' has ${count} dimensions (at byte ${at}); at most ${GGML_MAX_DIMS} are allowed`);
  }
  const dims: number[] = [];
  let elementCount = 1;
  for (let i = 0; i < count; i++) {
    const dim = reader.u64(`dimension ${i} of tensor '${name}'`);
    if (dim === 0n || dim > BigInt(Math.floor(Number.MAX_SAFE_INTEGER / elementCount))) {
      throw new GgufError(
        reader.path,
        'INVALID_SHAPE',
        `tensor '${name}' dimension ${i} is ${dim}: dimensions must be positive and their product below 2^53`,
      );
    }
    dims.push(Number(dim));
    elementCount *= Number(dim);
  }
  return dims;
}

/** Each tensor's bytes must lie inside the file, and no two tensors may share bytes. */
function checkDataLayout(path: string, tensors: readonly GgufTensorInfo[], fileSize: number): void {
  for (const tensor of tensors) {
    if (tensor.fileOffset + tensor.byteLength > fileSize) {
      throw new GgufError(
        path,
        'TENSOR_OUT_OF_FILE',
        `tensor '${tensor.name}' (${tensor.type} ${JSON.stringify(tensor.shape)}) needs bytes ${tensor.fileOffset}..${tensor.fileOffset + tensor.byteLength}, but the file has ${fileSize}`,
      );
    }
  }
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const previous = byOffset[i - 1];
    const current = byOffset[i];
    if (current.offset < previous.offset + previous.byteLength) {
      throw new GgufError(
        path,
        'OVERLAPPING_TENSORS',
        `tensors '${previous.name}' (data bytes ${previous.offset}..${previous.offset + previous.byteLength}) and '${current.name}' (from ${current.offset}) overlap`,
      );
    }
  }
}
