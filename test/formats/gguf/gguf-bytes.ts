/**
 * Test helpers written from docs/gguf.md alone, independent of src/formats/gguf: an assembler for GGUF bytes
 * (so tests can build files the writer would never produce: other versions, big-endian, quantized types,
 * corrupt fields), a walker that lists where each field of a file lies, and an f16 decoder.
 * Type ids are spelled out as the spec's numbers on purpose.
 */

export const VALUE = { UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12 };
export const TENSOR = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q2_K: 10, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 };

/** A little-endian byte appender. */
export class Bytes {
  private parts: number[] = [];

  get length(): number {
    return this.parts.length;
  }

  u8(value: number): this {
    this.parts.push(value & 0xff);
    return this;
  }

  u32(value: number): this {
    for (let i = 0; i < 4; i++) this.u8(Math.floor(value / 2 ** (8 * i)));
    return this;
  }

  u64(value: bigint | number): this {
    const big = BigInt.asUintN(64, BigInt(value));
    for (let i = 0n; i < 8n; i++) this.u8(Number((big >> (8n * i)) & 0xffn));
    return this;
  }

  f32(value: number): this {
    return this.raw(new Uint8Array(Float32Array.of(value).buffer));
  }

  str(value: string): this {
    const bytes = new TextEncoder().encode(value);
    return this.u64(bytes.length).raw(bytes);
  }

  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.u8(bytes[i]);
    return this;
  }

  zerosTo(multiple: number): this {
    while (this.parts.length % multiple !== 0) this.u8(0);
    return this;
  }

  toUint8Array(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** One key/value: the key, the value type id, and a function appending the value's bytes. */
export interface RawKv {
  key: string;
  type: number;
  value: (out: Bytes) => void;
}

export interface RawTensor {
  name: string;
  /** GGUF order (fastest-varying first). */
  dims: (number | bigint)[];
  type: number;
  data: Uint8Array;
  /** Relative to the data section; by default the running total of padded sizes, as writers do it. */
  offset?: bigint;
}

export interface RawFile {
  magic?: string;
  version?: number;
  kvs?: RawKv[];
  tensors?: RawTensor[];
  /** Padding unit of the data section; set `general.alignment` yourself when it is not 32. */
  alignment?: number;
}

export const kvString = (key: string, value: string): RawKv => ({ key, type: VALUE.STRING, value: (out) => out.str(value) });
export const kvU32 = (key: string, value: number): RawKv => ({ key, type: VALUE.UINT32, value: (out) => out.u32(value) });

export function buildGguf(file: RawFile): Uint8Array {
  const alignment = file.alignment ?? 32;
  const kvs = file.kvs ?? [];
  const tensors = file.tensors ?? [];
  const out = new Bytes().raw(new TextEncoder().encode(file.magic ?? 'GGUF'));
  out.u32(file.version ?? 3).u64(tensors.length).u64(kvs.length);
  for (const kv of kvs) {
    out.str(kv.key).u32(kv.type);
    kv.value(out);
  }
  let offset = 0n;
  for (const tensor of tensors) {
    out.str(tensor.name).u32(tensor.dims.length);
    for (const dim of tensor.dims) out.u64(dim);
    out.u32(tensor.type).u64(tensor.offset ?? offset);
    offset += BigInt(padded(tensor.data.length, alignment));
  }
  out.zerosTo(alignment);
  for (const tensor of tensors) out.raw(tensor.data).zerosTo(alignment);
  return out.toUint8Array();
}

function padded(length: number, alignment: number): number {
  return Math.ceil(length / alignment) * alignment;
}

/** A field of a GGUF file: where it is, how wide, and what it holds. */
export interface Field {
  kind: 'count' | 'length' | 'value-type' | 'n-dims' | 'dim' | 'tensor-type' | 'offset';
  at: number;
  bytes: 4 | 8;
}

/** The positions of the header fields of a valid little-endian GGUF file, and where its data section starts. */
export function walkGguf(bytes: Uint8Array): { fields: Field[]; dataStart: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: Field[] = [];
  let at = 8;
  const u32 = (kind: Field['kind']) => {
    fields.push({ kind, at, bytes: 4 });
    at += 4;
    return view.getUint32(at - 4, true);
  };
  const u64 = (kind: Field['kind']) => {
    fields.push({ kind, at, bytes: 8 });
    at += 8;
    return Number(view.getBigUint64(at - 8, true));
  };
  const string = () => {
    const length = u64('length'); // read before adding: `at += u64()` would use the old `at`
    at += length;
  };
  const fixedSize: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (type: number): void => {
    if (type === VALUE.STRING) return string();
    if (type !== VALUE.ARRAY) {
      at += fixedSize[type];
      return;
    }
    const itemType = u32('value-type');
    const length = u64('count');
    for (let i = 0; i < length; i++) value(itemType);
  };
  const tensorCount = u64('count');
  const kvCount = u64('count');
  for (let i = 0; i < kvCount; i++) {
    string();
    value(u32('value-type'));
  }
  for (let i = 0; i < tensorCount; i++) {
    string();
    const nDims = u32('n-dims');
    for (let d = 0; d < nDims; d++) u64('dim');
    u32('tensor-type');
    u64('offset');
  }
  return { fields, dataStart: padded(at, 32) };
}

/** IEEE half precision bits to a number, straight from the definition. */
export function f16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}
