/**
 * safetensors (huggingface/safetensors): a u64 little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}`, then the data
 * buffer, tensors row-major and little-endian, packed without holes. Offsets are relative to the buffer.
 *
 * The reader opens a file, validates the whole header against the file size, and reads one tensor at a time
 * through a file handle, so a model larger than memory can be loaded tensor by tensor. Typed arrays use the
 * host's byte order, which is little-endian on every platform Node runs this project on.
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { writeFileAtomicWith } from '../util/atomic.ts';
import { describeValue, FormatError } from './format-error.ts';
import { CompactTensor, isCompactType } from './compact-tensor.ts';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from './half-float.ts';

/** A named float32 tensor in host memory, row-major. */
export interface HostTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

const ITEM_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;

export type SafetensorsDtype = keyof typeof ITEM_BYTES;
export type WritableDtype = 'F32' | 'F16' | 'BF16';

export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  byteLength: number;
}

export class SafetensorsError extends FormatError {}

/** The reference implementation's limit; a larger length prefix means a corrupt or hostile file. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
const WRITABLE_DTYPES: readonly WritableDtype[] = ['F32', 'F16', 'BF16'];
/** Largest single read or write; Node rejects those of 2 GB or more. */
const MAX_IO_BYTES = 1 << 30;
/** Values converted per write when narrowing to 16 bits, so a tensor never needs a second full-size copy. */
const ENCODE_CHUNK = 1 << 16;

interface Entry extends TensorInfo {
  name: string;
  /** Byte range in the data buffer. */
  begin: number;
  end: number;
}

type Decoder = (bytes: ArrayBuffer) => Float32Array;

const DECODERS: Partial<Record<SafetensorsDtype, Decoder>> = {
  F32: (bytes) => new Float32Array(bytes),
  F16: (bytes) => {
    const out = new Float32Array(bytes.byteLength / 2);
    decodeF16(new Uint16Array(bytes), out);
    return out;
  },
  BF16: (bytes) => {
    const out = new Float32Array(bytes.byteLength / 2);
    decodeBf16(new Uint16Array(bytes), out);
    return out;
  },
  F64: (bytes) => Float32Array.from(new Float64Array(bytes)),
  I64: (bytes) => Float32Array.from(new BigInt64Array(bytes), Number),
  U64: (bytes) => Float32Array.from(new BigUint64Array(bytes), Number),
  I32: (bytes) => Float32Array.from(new Int32Array(bytes)),
  U32: (bytes) => Float32Array.from(new Uint32Array(bytes)),
  I16: (bytes) => Float32Array.from(new Int16Array(bytes)),
  U16: (bytes) => Float32Array.from(new Uint16Array(bytes)),
  I8: (bytes) => Float32Array.from(new Int8Array(bytes)),
  U8: (bytes) => Float32Array.from(new Uint8Array(bytes)),
  BOOL: (bytes) => Float32Array.from(new Uint8Array(bytes)),
};

export class SafetensorsFile {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    /** File offset of the data buffer: 8 + header length. */
    private readonly dataStart: number,
    /** In data-buffer order. */
    private readonly entries: Map<string, Entry>,
    readonly metadata: Record<string, string>,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    const handle = await withIoErrors(path, 'open', () => open(path, 'r'));
    try {
      const { size } = await withIoErrors(path, 'stat', () => handle.stat());
      const { headerLength, entries, metadata } = await readHeader(path, handle, size);
      return new SafetensorsFile(path, handle, 8 + headerLength, entries, metadata);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): TensorInfo {
    const { dtype, shape, byteLength } = this.entry(name);
    return { dtype, shape: [...shape], byteLength };
  }

  /** Reads only this tensor's bytes and converts them to float32. */
  async read(name: string): Promise<Float32Array> {
    if (this.closed) throw new SafetensorsError(this.path, 'CLOSED', `cannot read '${name}': the file was closed`);
    const entry = this.entry(name);
    const decode = DECODERS[entry.dtype];
    if (!decode) {
      throw new SafetensorsError(
        this.path,
        'UNSUPPORTED_DTYPE',
        `tensor '${name}' has dtype ${entry.dtype}, which cannot be read as float32 (readable: ${Object.keys(DECODERS).join(', ')})`,
      );
    }
    const bytes = new Uint8Array(entry.byteLength);
    await readExactly(this.path, this.handle, bytes, this.dataStart + entry.begin);
    return decode(bytes.buffer);
  }

  /** Reads this tensor's bytes as they are stored (F32, F16, BF16); other dtypes are converted to F32. */
  async readCompact(name: string): Promise<CompactTensor> {
    const entry = this.entry(name);
    if (!isCompactType(entry.dtype)) return new CompactTensor('F32', entry.shape, new Uint8Array((await this.read(name)).buffer));
    if (this.closed) throw new SafetensorsError(this.path, 'CLOSED', `cannot read '${name}': the file was closed`);
    const bytes = new Uint8Array(entry.byteLength);
    await readExactly(this.path, this.handle, bytes, this.dataStart + entry.begin);
    return new CompactTensor(entry.dtype, entry.shape, bytes);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }

  private entry(name: string): Entry {
    const entry = this.entries.get(name);
    if (!entry) {
      const some = this.names().slice(0, 3).map((n) => `'${n}'`).join(', ');
      throw new SafetensorsError(
        this.path,
        'NOT_FOUND',
        `no tensor named '${name}' (the file holds ${this.entries.size}${some ? `, e.g. ${some}` : ''})`,
      );
    }
    return entry;
  }
}

// ---------------------------------------------------------------- reading the header

async function readHeader(
  path: string,
  handle: FileHandle,
  fileSize: number,
): Promise<{ headerLength: number; entries: Map<string, Entry>; metadata: Record<string, string> }> {
  if (fileSize < 8) {
    throw new SafetensorsError(path, 'TRUNCATED', `file is ${fileSize} bytes, too short for the 8-byte header length`);
  }
  const prefix = new Uint8Array(8);
  await readExactly(path, handle, prefix, 0);
  const declared = new DataView(prefix.buffer).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(path, 'HEADER_TOO_LARGE', `header length ${declared} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const headerLength = Number(declared);
  if (8 + headerLength > fileSize) {
    throw new SafetensorsError(
      path,
      'TRUNCATED',
      `header length ${headerLength} goes beyond the end of the file (${fileSize} bytes)`,
    );
  }
  const headerBytes = new Uint8Array(headerLength);
  await readExactly(path, handle, headerBytes, 8);
  const { entries, metadata } = parseHeader(path, headerBytes, fileSize - 8 - headerLength);
  return { headerLength, entries, metadata };
}

function parseHeader(
  path: string,
  headerBytes: Uint8Array,
  dataLength: number,
): { entries: Map<string, Entry>; metadata: Record<string, string> } {
  const invalid = (detail: string) => new SafetensorsError(path, 'INVALID_HEADER', detail);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw invalid('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw invalid(`header is not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(json)) throw invalid(`header must be a JSON object, got ${describeValue(json)}`);
  const duplicate = firstDuplicate(topLevelKeys(text));
  if (duplicate !== undefined) throw invalid(`'${duplicate}' appears more than once in the header`);

  const metadata = parseMetadata(path, json[METADATA_KEY]);
  const entries = Object.entries(json)
    .filter(([name]) => name !== METADATA_KEY)
    .map(([name, value]) => parseEntry(path, name, value))
    .sort((a, b) => a.begin - b.begin || a.end - b.end);
  checkLayout(path, entries, dataLength);
  return { entries: new Map(entries.map((entry) => [entry.name, entry])), metadata };
}

function parseMetadata(path: string, value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (!isPlainObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw new SafetensorsError(path, 'INVALID_HEADER', `${METADATA_KEY} must map strings to strings, got ${describeValue(value)}`);
  }
  return { ...(value as Record<string, string>) };
}

function parseEntry(path: string, name: string, value: unknown): Entry {
  const invalid = (detail: string) => new SafetensorsError(path, 'INVALID_TENSOR', `tensor '${name}': ${detail}`);
  if (!isPlainObject(value)) throw invalid(`entry must be an object with dtype, shape and data_offsets, got ${describeValue(value)}`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string' || !Object.hasOwn(ITEM_BYTES, dtype)) {
    throw invalid(`unknown dtype ${describeValue(dtype)} (known: ${Object.keys(ITEM_BYTES).join(', ')})`);
  }
  if (!isIntegerList(shape)) throw invalid(`shape must be a list of non-negative integers, got ${describeValue(shape)}`);
  if (!isIntegerList(offsets) || offsets.length !== 2 || offsets[0] > offsets[1]) {
    throw invalid(`data_offsets must be [begin, end] with 0 <= begin <= end, got ${describeValue(offsets)}`);
  }
  const count = shape.reduce((product, dim) => product * dim, 1);
  const byteLength = count * ITEM_BYTES[dtype as SafetensorsDtype];
  if (!Number.isSafeInteger(byteLength)) throw invalid(`shape ${describeValue(shape)} is too large`);
  const [begin, end] = offsets;
  if (byteLength !== end - begin) {
    throw invalid(`shape ${describeValue(shape)} of ${dtype} needs ${byteLength} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
  }
  return { name, dtype: dtype as SafetensorsDtype, shape, byteLength, begin, end };
}

/** Tensors must tile the data buffer exactly: no overlap, no hole, nothing past the end, nothing left over. */
function checkLayout(path: string, sorted: Entry[], dataLength: number): void {
  const fail = (detail: string) => new SafetensorsError(path, 'INVALID_OFFSETS', detail);
  let covered = 0;
  let previous: Entry | undefined;
  for (const entry of sorted) {
    if (entry.end > dataLength) {
      throw fail(`tensor '${entry.name}' ends at byte ${entry.end} of the data buffer, which is only ${dataLength} bytes`);
    }
    if (entry.begin < covered) {
      throw fail(`tensors '${previous?.name}' and '${entry.name}' overlap (data_offsets ${entry.begin} < ${covered})`);
    }
    if (entry.begin > covered) {
      throw fail(`bytes ${covered}..${entry.begin} of the data buffer belong to no tensor (a hole before '${entry.name}')`);
    }
    covered = entry.end;
    previous = entry;
  }
  if (covered !== dataLength) {
    throw fail(`the last ${dataLength - covered} bytes of the file belong to no tensor`);
  }
}

/** Keys of the outermost object, in order and with repeats, which JSON.parse would silently merge. */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '"') {
      const start = i;
      for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
      if (depth === 1 && nextNonSpace(text, i + 1) === ':') keys.push(JSON.parse(text.slice(start, i + 1)) as string);
    } else if (char === '{' || char === '[') {
      depth++;
    } else if (char === '}' || char === ']') {
      depth--;
    }
  }
  return keys;
}

function nextNonSpace(text: string, from: number): string | undefined {
  let i = from;
  while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  return text[i];
}

function firstDuplicate(values: string[]): string | undefined {
  const seen = new Set<string>();
  for (const value of values) {
    if (seen.has(value)) return value;
    seen.add(value);
  }
  return undefined;
}

async function readExactly(path: string, handle: FileHandle, target: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const length = Math.min(MAX_IO_BYTES, target.length - done);
    const { bytesRead } = await withIoErrors(path, 'read', () => handle.read(target, done, length, position + done));
    if (bytesRead === 0) {
      throw new SafetensorsError(path, 'TRUNCATED', `file ends at byte ${position + done}, expected ${target.length - done} more`);
    }
    done += bytesRead;
  }
}

async function withIoErrors<T>(path: string, action: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new SafetensorsError(path, 'IO', `cannot ${action}: ${(error as Error).message}`, { cause: error });
  }
}

// ---------------------------------------------------------------- writing

export interface WriteSafetensorsOptions {
  dtype: WritableDtype;
  metadata?: Record<string, string>;
}

/**
 * Writes the tensors in the given order, converted to `dtype`, atomically (temp file then rename). Data is
 * streamed tensor by tensor; a 16-bit dtype is converted in small chunks.
 */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<HostTensor>,
  options: WriteSafetensorsOptions,
): Promise<void> {
  const list = [...tensors];
  const header = encodeHeader(path, list, options);
  await writeFileAtomicWith(path, async (handle) => {
    await writeAllAt(handle, header, 0);
    let position = header.length;
    for (const tensor of list) position = await writeTensorData(handle, tensor.data, options.dtype, position);
  });
}

/** Bytes a tensor of this shape takes in the file. */
export function storedByteLength(shape: readonly number[], dtype: SafetensorsDtype): number {
  return shape.reduce((product, dim) => product * dim, 1) * ITEM_BYTES[dtype];
}

function encodeHeader(path: string, tensors: HostTensor[], options: WriteSafetensorsOptions): Uint8Array {
  const invalid = (detail: string) => new SafetensorsError(path, 'INVALID_ARGUMENT', detail);
  if (!WRITABLE_DTYPES.includes(options.dtype)) {
    throw invalid(`dtype must be one of ${WRITABLE_DTYPES.join(', ')}, got ${describeValue(options.dtype)}`);
  }
  // a null prototype keeps a tensor named "__proto__" an ordinary key
  const header: Record<string, unknown> = Object.create(null);
  if (options.metadata !== undefined) header[METADATA_KEY] = checkedMetadata(options.metadata, invalid);
  let offset = 0;
  for (const tensor of tensors) {
    checkTensor(tensor, invalid);
    if (Object.hasOwn(header, tensor.name)) throw invalid(`tensor name '${tensor.name}' is used twice`);
    const end = offset + storedByteLength(tensor.shape, options.dtype);
    header[tensor.name] = { dtype: options.dtype, shape: tensor.shape, data_offsets: [offset, end] };
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, 8);
  return bytes;
}

function checkedMetadata(metadata: Record<string, string>, invalid: (detail: string) => Error): Record<string, string> {
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') throw invalid(`metadata '${key}' must be a string, got ${describeValue(value)}`);
  }
  return metadata;
}

function checkTensor(tensor: HostTensor, invalid: (detail: string) => Error): void {
  if (typeof tensor.name !== 'string' || tensor.name === '' || tensor.name === METADATA_KEY) {
    throw invalid(`tensor name must be a non-empty string other than ${METADATA_KEY}, got ${describeValue(tensor.name)}`);
  }
  if (!isIntegerList(tensor.shape)) {
    throw invalid(`tensor '${tensor.name}': shape must be a list of non-negative integers, got ${describeValue(tensor.shape)}`);
  }
  if (!(tensor.data instanceof Float32Array)) throw invalid(`tensor '${tensor.name}': data must be a Float32Array`);
  const count = tensor.shape.reduce((product, dim) => product * dim, 1);
  if (count !== tensor.data.length) {
    throw invalid(`tensor '${tensor.name}': shape ${describeValue(tensor.shape)} holds ${count} values but data has ${tensor.data.length}`);
  }
}

/** Writes all of `bytes` at `position`, looping over short writes. */
async function writeAllAt(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const length = Math.min(MAX_IO_BYTES, bytes.length - done);
    const { bytesWritten } = await handle.write(bytes, done, length, position + done);
    done += bytesWritten;
  }
}

async function writeTensorData(handle: FileHandle, data: Float32Array, dtype: WritableDtype, position: number): Promise<number> {
  if (dtype === 'F32') {
    await writeAllAt(handle, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), position);
    return position + data.byteLength;
  }
  const encode = dtype === 'F16' ? encodeF16 : encodeBf16;
  const chunk = new Uint16Array(Math.min(ENCODE_CHUNK, data.length));
  let at = position;
  for (let start = 0; start < data.length; start += chunk.length) {
    const part = data.subarray(start, start + chunk.length);
    encode(part, chunk);
    await writeAllAt(handle, new Uint8Array(chunk.buffer, 0, part.length * 2), at);
    at += part.length * 2;
  }
  return at;
}

// ---------------------------------------------------------------- small helpers

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIntegerList(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((v) => Number.isSafeInteger(v) && v >= 0);
}
