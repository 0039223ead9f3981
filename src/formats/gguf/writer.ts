/**
 * Writes a GGUF file in the order its sections appear, as gguf-py's GGUFWriter does: metadata, then tensor
 * infos, then the tensor data streamed tensor by tensor, each padded to the alignment. The writer's state
 * only moves forward and a call out of order throws. The file appears atomically (temp file, then rename):
 * a failure midway leaves any earlier file at the path untouched.
 */
import type { FileHandle } from 'node:fs/promises';
import { writeFileAtomicWith } from '../../util/atomic.ts';
import type { HostTensor } from '../safetensors.ts';
import { ByteWriter } from './byte-writer.ts';
import {
  GGML_BLOCK_LAYOUT,
  GGML_MAX_DIMS,
  GGML_MAX_TENSOR_NAME_BYTES,
  GGML_QUANT_VERSION,
  GGML_TYPE,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_KEY,
  GGUF_MAGIC_BYTES,
  GGUF_MAX_KEY_BYTES,
  GGUF_READABLE_VERSIONS,
  GGUF_VERSION,
} from './constants.ts';
import type { GgufVersion } from './constants.ts';
import { GgufError } from './gguf-error.ts';
import { alignOffset, dimsFromShape, tensorByteLength } from './layout.ts';
import { encodeValue } from './metadata-encoding.ts';
import type { GgufValue } from './metadata.ts';
import { QUANTIZERS } from './quantize.ts';
import type { QuantizableType } from './quantize.ts';

export type GgufWritableType = QuantizableType;

export interface GgufWriterOptions {
  /** Power of two; written as `general.alignment` when it is not the default 32. */
  alignment?: number;
  /** 3 unless told; version 2 has the same layout. */
  version?: GgufVersion;
}

type WriterState = 'METADATA' | 'TENSOR_INFOS' | 'WRITING' | 'DONE' | 'FAILED';

/** The states each state can be entered from: the writer only moves forward. */
const ENTERED_FROM: Record<WriterState, readonly WriterState[]> = {
  METADATA: ['METADATA'],
  TENSOR_INFOS: ['METADATA', 'TENSOR_INFOS'],
  WRITING: ['METADATA', 'TENSOR_INFOS'],
  DONE: ['WRITING'],
  FAILED: ['WRITING'],
};

interface PlannedTensor {
  name: string;
  shape: readonly number[];
  type: GgufWritableType;
  elementCount: number;
  byteLength: number;
  /** Relative to the data section. */
  offset: number;
}

/** Values converted per write: a whole number of blocks of every writable type. */
const CHUNK_VALUES = 1 << 16;
const WRITABLE_TYPES = Object.keys(QUANTIZERS) as GgufWritableType[];

export class GgufWriter {
  private state: WriterState = 'METADATA';
  /** Each value already encoded (type tag and payload), so a bad value fails when it is added. */
  private readonly metadata = new Map<string, Uint8Array>();
  private readonly tensors: PlannedTensor[] = [];
  private dataLength = 0;
  private readonly alignment: number;
  private readonly version: GgufVersion;

  constructor(
    readonly path: string,
    options: GgufWriterOptions = {},
  ) {
    this.alignment = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
    this.version = options.version ?? GGUF_VERSION;
    if (!Number.isInteger(this.alignment) || this.alignment <= 0 || this.alignment > 2 ** 31 || (this.alignment & (this.alignment - 1)) !== 0) {
      throw this.invalid(`alignment must be a power of two up to 2^31, got ${options.alignment}`);
    }
    if (!(GGUF_READABLE_VERSIONS as readonly number[]).includes(this.version)) {
      throw this.invalid(`version must be one of ${GGUF_READABLE_VERSIONS.join(', ')}, got ${options.version}`);
    }
    if (this.alignment !== GGUF_DEFAULT_ALIGNMENT) this.encodeMetadata(GGUF_KEY.GENERAL_ALIGNMENT, { type: 'UINT32', value: this.alignment });
  }

  // ---------------------------------------------------------------- metadata

  add(key: string, value: GgufValue): this {
    this.advance('METADATA', `add metadata '${key}'`);
    if (key === GGUF_KEY.GENERAL_ALIGNMENT) throw this.invalid(`set ${key} through the writer's alignment option, not as metadata`);
    this.encodeMetadata(key, value);
    return this;
  }

  addString(key: string, value: string): this {
    return this.add(key, { type: 'STRING', value });
  }

  addUint32(key: string, value: number): this {
    return this.add(key, { type: 'UINT32', value });
  }

  addInt32(key: string, value: number): this {
    return this.add(key, { type: 'INT32', value });
  }

  addFloat32(key: string, value: number): this {
    return this.add(key, { type: 'FLOAT32', value });
  }

  addBool(key: string, value: boolean): this {
    return this.add(key, { type: 'BOOL', value });
  }

  /** A number must be a safe integer; larger values need a bigint. */
  addUint64(key: string, value: bigint | number): this {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      throw this.invalid(`metadata '${key}': a UINT64 given as a number must be a safe integer, got ${value}`);
    }
    return this.add(key, { type: 'UINT64', value: BigInt(value) });
  }

  addStringArray(key: string, values: readonly string[]): this {
    return this.add(key, { type: 'ARRAY', itemType: 'STRING', value: values });
  }

  addInt32Array(key: string, values: readonly number[] | Int32Array): this {
    return this.add(key, { type: 'ARRAY', itemType: 'INT32', value: values });
  }

  addUint32Array(key: string, values: readonly number[] | Uint32Array): this {
    return this.add(key, { type: 'ARRAY', itemType: 'UINT32', value: values });
  }

  addFloat32Array(key: string, values: readonly number[] | Float32Array): this {
    return this.add(key, { type: 'ARRAY', itemType: 'FLOAT32', value: values });
  }

  private encodeMetadata(key: string, value: GgufValue): void {
    const keyBytes = typeof key === 'string' ? Buffer.byteLength(key) : 0;
    if (keyBytes === 0 || keyBytes > GGUF_MAX_KEY_BYTES) {
      throw this.invalid(`metadata key must be a string of 1..${GGUF_MAX_KEY_BYTES} bytes, got ${JSON.stringify(key)}`);
    }
    if (this.metadata.has(key)) throw this.invalid(`metadata key '${key}' is added twice`);
    const out = new ByteWriter();
    encodeValue(out, value, (detail) => this.invalid(`metadata '${key}': ${detail}`));
    this.metadata.set(key, out.result().slice());
  }

  // ---------------------------------------------------------------- tensor infos

  /** Declares the next tensor: its name, its shape in row-major (PyTorch) order and the type to store it as. */
  addTensorInfo(name: string, shape: readonly number[], type: GgufWritableType): this {
    this.advance('TENSOR_INFOS', `add tensor info '${name}'`);
    const invalid = (detail: string) => this.invalid(`tensor '${name}': ${detail}`);
    const nameBytes = typeof name === 'string' ? Buffer.byteLength(name) : 0;
    if (nameBytes === 0 || nameBytes > GGML_MAX_TENSOR_NAME_BYTES) {
      throw this.invalid(`tensor name must be a string of 1..${GGML_MAX_TENSOR_NAME_BYTES} bytes, got ${JSON.stringify(name)}`);
    }
    if (this.tensors.some((tensor) => tensor.name === name)) throw invalid('the name is used twice');
    if (!WRITABLE_TYPES.includes(type)) throw invalid(`type must be one of ${WRITABLE_TYPES.join(', ')}, got ${JSON.stringify(type)}`);
    const elementCount = checkedElementCount(shape, invalid);
    const { blockSize } = GGML_BLOCK_LAYOUT[type];
    const rowLength = shape.length > 0 ? shape[shape.length - 1] : 1;
    if (rowLength % blockSize !== 0) {
      throw invalid(`${type} needs rows (the last dimension) in multiples of ${blockSize}, got shape ${JSON.stringify(shape)}; store it as F16 or F32`);
    }
    const byteLength = tensorByteLength(type, elementCount);
    this.tensors.push({ name, shape: [...shape], type, elementCount, byteLength, offset: this.dataLength });
    this.dataLength += alignOffset(byteLength, this.alignment);
    return this;
  }

  // ---------------------------------------------------------------- the file

  /**
   * Writes the file. `tensors` must yield the declared tensors in the order they were declared, with the
   * declared shapes; each is converted and written before the next is asked for.
   */
  async write(tensors: Iterable<HostTensor> | AsyncIterable<HostTensor>): Promise<void> {
    this.advance('WRITING', 'write the file');
    try {
      const header = this.encodeHeader();
      await writeFileAtomicWith(this.path, async (handle) => {
        await writeAllAt(handle, header, 0);
        let index = 0;
        for await (const tensor of tensors) {
          const planned = this.tensors[index];
          if (planned === undefined) throw this.invalid(`got tensor '${tensor?.name}' after all ${this.tensors.length} declared tensors`);
          this.checkData(planned, tensor);
          await this.writeTensor(handle, planned, tensor.data, header.length + planned.offset);
          index++;
        }
        if (index < this.tensors.length) {
          throw this.invalid(`the tensors ended after ${index} of ${this.tensors.length}; '${this.tensors[index].name}' is missing`);
        }
      });
      this.advance('DONE', 'finish the file');
    } catch (error) {
      this.advance('FAILED', 'record the failure');
      throw error;
    }
  }

  private encodeHeader(): Uint8Array {
    const quantized = this.tensors.some((tensor) => GGML_BLOCK_LAYOUT[tensor.type].blockSize > 1);
    if (quantized && !this.metadata.has(GGUF_KEY.GENERAL_QUANTIZATION_VERSION)) {
      // the spec requires it whenever a tensor is quantized
      this.encodeMetadata(GGUF_KEY.GENERAL_QUANTIZATION_VERSION, { type: 'UINT32', value: GGML_QUANT_VERSION });
    }
    const out = new ByteWriter();
    for (const byte of GGUF_MAGIC_BYTES) out.u8(byte);
    out.u32(this.version);
    out.u64(this.tensors.length);
    out.u64(this.metadata.size);
    for (const [key, value] of this.metadata) {
      out.string(key);
      out.bytes(value);
    }
    for (const tensor of this.tensors) {
      const dims = dimsFromShape(tensor.shape);
      out.string(tensor.name);
      out.u32(dims.length);
      for (const dim of dims) out.u64(dim);
      out.u32(GGML_TYPE[tensor.type]);
      out.u64(tensor.offset);
    }
    out.zeros(alignOffset(out.position, this.alignment) - out.position);
    return out.result();
  }

  private checkData(planned: PlannedTensor, tensor: HostTensor): void {
    const invalid = (detail: string) => this.invalid(`tensor '${planned.name}': ${detail}`);
    if (tensor?.name !== planned.name) throw invalid(`expected it next, got '${tensor?.name}' (tensors must come in the declared order)`);
    if (!sameShape(tensor.shape, planned.shape)) {
      throw invalid(`was declared with shape ${JSON.stringify(planned.shape)}, got ${JSON.stringify(tensor.shape)}`);
    }
    if (!(tensor.data instanceof Float32Array) || tensor.data.length !== planned.elementCount) {
      throw invalid(`data must be a Float32Array of ${planned.elementCount} values`);
    }
  }

  /** Converts and writes one tensor a chunk at a time, then pads it to the alignment. */
  private async writeTensor(handle: FileHandle, planned: PlannedTensor, data: Float32Array, position: number): Promise<void> {
    const { blockSize, typeSize } = GGML_BLOCK_LAYOUT[planned.type];
    const chunk = new Uint8Array((Math.min(CHUNK_VALUES, data.length) / blockSize) * typeSize);
    let at = position;
    for (let start = 0; start < data.length; start += CHUNK_VALUES) {
      const values = data.subarray(start, start + CHUNK_VALUES);
      const bytes = chunk.subarray(0, (values.length / blockSize) * typeSize);
      QUANTIZERS[planned.type](values, bytes);
      await writeAllAt(handle, bytes, at);
      at += bytes.length;
    }
    const padding = alignOffset(planned.byteLength, this.alignment) - planned.byteLength;
    if (padding > 0) await writeAllAt(handle, new Uint8Array(padding), at);
  }

  private advance(to: WriterState, action: string): void {
    if (!ENTERED_FROM[to].includes(this.state)) {
      const why =
        this.state === 'TENSOR_INFOS'
          ? 'metadata must all be added before the first tensor info'
          : this.state === 'FAILED'
            ? 'writing this file failed already'
            : 'the file is written (or being written) already';
      throw new GgufError(this.path, 'WRITER_ORDER', `cannot ${action}: ${why} (the writer is at stage ${this.state})`);
    }
    this.state = to;
  }

  private invalid(detail: string): GgufError {
    return new GgufError(this.path, 'INVALID_ARGUMENT', detail);
  }
}

function checkedElementCount(shape: readonly number[], invalid: (detail: string) => Error): number {
  if (!Array.isArray(shape) || shape.length > GGML_MAX_DIMS || !shape.every((dim) => Number.isSafeInteger(dim) && dim > 0)) {
    throw invalid(`shape must be a list of at most ${GGML_MAX_DIMS} positive integers, got ${JSON.stringify(shape)}`);
  }
  const count = shape.reduce((product, dim) => product * dim, 1);
  if (!Number.isSafeInteger(count)) throw invalid(`shape ${JSON.stringify(shape)} has too many elements`);
  return count;
}

function sameShape(a: readonly number[] | undefined, b: readonly number[]): boolean {
  return Array.isArray(a) && a.length === b.length && a.every((dim, i) => dim === b[i]);
}

/** Writes all of `bytes` at `position`, looping over short writes. */
async function writeAllAt(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}
