/**
 * Reads GGUF files (ggml `docs/gguf.md`, versions 2 and 3, little-endian). `open` parses and validates the
 * header, reading only as much of the file as it needs; `readTensor` reads one tensor's bytes through the file
 * handle and dequantizes them, so a model larger than memory can be loaded tensor by tensor.
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { NeedMoreBytes } from './byte-reader.ts';
import { GGML_BLOCK_LAYOUT } from './constants.ts';
import type { GgufVersion } from './constants.ts';
import { DEQUANTIZERS, isDequantizable } from './dequantize.ts';
import { GgufError } from './gguf-error.ts';
import { parseGgufHeader } from './header.ts';
import type { GgufHeader, GgufTensorInfo } from './header.ts';
import { GgufMetadata } from './metadata.ts';

/** The first read; a header that does not fit is read again with a larger prefix. */
const INITIAL_HEADER_BYTES = 1 << 20;
/** No real header comes near this (a 256k-token vocabulary with merges is tens of MB): beyond it, corruption. */
const MAX_HEADER_BYTES = 256 << 20;
/** About this many bytes per read when loading tensor data (rounded down to whole blocks). */
const READ_CHUNK_BYTES = 16 << 20;

export class GgufFile {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly header: GgufHeader,
    readonly metadata: GgufMetadata,
    private readonly byName: Map<string, GgufTensorInfo>,
  ) {}

  static async open(path: string): Promise<GgufFile> {
    const handle = await withIoErrors(path, 'open', () => open(path, 'r'));
    try {
      const { size } = await withIoErrors(path, 'stat', () => handle.stat());
      const header = await readHeader(path, handle, size);
      const byName = new Map(header.tensors.map((tensor) => [tensor.name, tensor]));
      return new GgufFile(path, handle, header, new GgufMetadata(path, header.metadata), byName);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  get version(): GgufVersion {
    return this.header.version;
  }

  get alignment(): number {
    return this.header.alignment;
  }

  /** File offset of the data section. */
  get dataOffset(): number {
    return this.header.dataOffset;
  }

  /** Tensor infos in file order. */
  get tensors(): readonly GgufTensorInfo[] {
    return this.header.tensors;
  }

  tensorNames(): string[] {
    return this.header.tensors.map((tensor) => tensor.name);
  }

  hasTensor(name: string): boolean {
    return this.byName.has(name);
  }

  tensorInfo(name: string): GgufTensorInfo {
    const info = this.byName.get(name);
    if (!info) {
      const some = this.tensorNames().slice(0, 3).map((n) => `'${n}'`).join(', ');
      throw new GgufError(this.path, 'NOT_FOUND', `no tensor named '${name}' (the file holds ${this.byName.size}${some ? `, e.g. ${some}` : ''})`);
    }
    return info;
  }

  /** The tensor's stored bytes, as they are in the file. */
  async readTensorBytes(name: string): Promise<Uint8Array> {
    const info = this.openTensor(name);
    const bytes = allocate(this.path, name, () => new Uint8Array(info.byteLength));
    await readExactly(this.path, this.handle, bytes, info.fileOffset);
    return bytes;
  }

  /** The tensor as float32 values in row-major order (its `shape`), dequantized a chunk of blocks at a time. */
  async readTensor(name: string): Promise<Float32Array> {
    const info = this.openTensor(name);
    const type = info.type;
    if (!isDequantizable(type)) {
      throw new GgufError(
        this.path,
        'UNSUPPORTED_TYPE',
        `unsupported tensor type ${type} in tensor '${name}' (readable: ${Object.keys(DEQUANTIZERS).join(', ')})`,
      );
    }
    const { blockSize, typeSize } = GGML_BLOCK_LAYOUT[type];
    const out = allocate(this.path, name, () => new Float32Array(info.elementCount));
    const chunk = new Uint8Array(Math.min(READ_CHUNK_BYTES - (READ_CHUNK_BYTES % typeSize), info.byteLength));
    for (let done = 0; done < info.byteLength; done += chunk.length) {
      const bytes = chunk.subarray(0, Math.min(chunk.length, info.byteLength - done));
      await readExactly(this.path, this.handle, bytes, info.fileOffset + done);
      const first = (done / typeSize) * blockSize;
      DEQUANTIZERS[type](bytes, out.subarray(first, first + (bytes.length / typeSize) * blockSize));
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }

  private openTensor(name: string): GgufTensorInfo {
    if (this.closed) throw new GgufError(this.path, 'CLOSED', `cannot read tensor '${name}': the file was closed`);
    return this.tensorInfo(name);
  }
}

/** Parses the header from a growing prefix of the file, so that only the header is ever read. */
async function readHeader(path: string, handle: FileHandle, fileSize: number): Promise<GgufHeader> {
  let prefix = new Uint8Array(0);
  let wanted = Math.min(fileSize, INITIAL_HEADER_BYTES);
  for (;;) {
    const longer = new Uint8Array(wanted);
    longer.set(prefix);
    await readExactly(path, handle, longer.subarray(prefix.length), prefix.length);
    prefix = longer;
    try {
      return parseGgufHeader(path, prefix, fileSize);
    } catch (error) {
      if (!(error instanceof NeedMoreBytes)) throw error;
      if (error.end > MAX_HEADER_BYTES) {
        throw new GgufError(path, 'HEADER_TOO_LARGE', `the header would reach byte ${error.end}, beyond the ${MAX_HEADER_BYTES}-byte limit`);
      }
      wanted = Math.min(fileSize, MAX_HEADER_BYTES, Math.max(2 * wanted, error.end));
    }
  }
}

async function readExactly(path: string, handle: FileHandle, target: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await withIoErrors(path, 'read', () => handle.read(target, done, target.length - done, position + done));
    if (bytesRead === 0) {
      throw new GgufError(path, 'TRUNCATED', `file ends at byte ${position + done}, expected ${target.length - done} more`);
    }
    done += bytesRead;
  }
}

/** A tensor too large for one typed array is a clear error, not a RangeError. */
function allocate<T>(path: string, name: string, create: () => T): T {
  try {
    return create();
  } catch (error) {
    throw new GgufError(path, 'TOO_LARGE', `tensor '${name}' is too large to hold in memory at once`, { cause: error });
  }
}

async function withIoErrors<T>(path: string, action: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new GgufError(path, 'IO', `cannot ${action}: ${(error as Error).message}`, { cause: error });
  }
}
