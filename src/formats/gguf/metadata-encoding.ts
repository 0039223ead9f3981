/**
 * Typed metadata values to GGUF bytes (value type, then the value), checking each value fits its type.
 * An array is its item type, its u64 length and the items; an array inside an array has the same form.
 */
import type { ByteWriter } from './byte-writer.ts';
import { GGUF_VALUE_TYPE } from './constants.ts';
import type { GgufArray, GgufValue } from './metadata.ts';

const INTEGER_RANGE = {
  UINT8: [0, 0xff],
  INT8: [-0x80, 0x7f],
  UINT16: [0, 0xffff],
  INT16: [-0x8000, 0x7fff],
  UINT32: [0, 0xffffffff],
  INT32: [-0x80000000, 0x7fffffff],
} as const;

const BIGINT_RANGE = {
  UINT64: [0n, 2n ** 64n - 1n],
  INT64: [-(2n ** 63n), 2n ** 63n - 1n],
} as const;

type Scalar = number | bigint | boolean | string;

/** Writes `value` with its type tag; `invalid` builds the error for a value that does not fit its type. */
export function encodeValue(out: ByteWriter, value: GgufValue, invalid: (detail: string) => Error): void {
  out.u32(typeId(value.type, invalid));
  if (value.type === 'ARRAY') encodeArrayBody(out, value, invalid);
  else encodeScalar(out, value.type, value.value, invalid);
}

function encodeArrayBody(out: ByteWriter, array: GgufArray, invalid: (detail: string) => Error): void {
  if (!isArrayLike(array.value)) throw invalid(`an ARRAY value must be an array, got ${typeof array.value}`);
  out.u32(typeId(array.itemType, invalid));
  out.u64(array.value.length);
  for (let i = 0; i < array.value.length; i++) {
    const item = array.value[i];
    const itemInvalid = (detail: string) => invalid(`item ${i}: ${detail}`);
    if (array.itemType === 'ARRAY') encodeArrayBody(out, item as GgufArray, itemInvalid);
    else encodeScalar(out, array.itemType, item as Scalar, itemInvalid);
  }
}

function encodeScalar(out: ByteWriter, type: Exclude<GgufValue['type'], 'ARRAY'>, value: Scalar, invalid: (detail: string) => Error): void {
  switch (type) {
    case 'STRING':
      if (typeof value !== 'string') throw invalid(`a STRING must be a string, got ${typeof value}`);
      return out.string(value);
    case 'BOOL':
      if (typeof value !== 'boolean') throw invalid(`a BOOL must be true or false, got ${typeof value}`);
      return out.u8(value ? 1 : 0);
    case 'FLOAT32':
    case 'FLOAT64':
      if (typeof value !== 'number') throw invalid(`a ${type} must be a number, got ${typeof value}`);
      return type === 'FLOAT32' ? out.f32(value) : out.f64(value);
    case 'UINT64':
    case 'INT64': {
      const [min, max] = BIGINT_RANGE[type];
      if (typeof value !== 'bigint' || value < min || value > max) throw invalid(`a ${type} must be a bigint in ${min}..${max}, got ${String(value)}`);
      return type === 'UINT64' ? out.u64(value) : out.i64(value);
    }
    default: {
      const [min, max] = INTEGER_RANGE[type];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
        throw invalid(`a ${type} must be an integer in ${min}..${max}, got ${String(value)}`);
      }
      return writeInteger(out, type, value);
    }
  }
}

function writeInteger(out: ByteWriter, type: keyof typeof INTEGER_RANGE, value: number): void {
  switch (type) {
    case 'UINT8':
      return out.u8(value);
    case 'INT8':
      return out.i8(value);
    case 'UINT16':
      return out.u16(value);
    case 'INT16':
      return out.i16(value);
    case 'UINT32':
      return out.u32(value);
    case 'INT32':
      return out.i32(value);
  }
}

function typeId(type: string, invalid: (detail: string) => Error): number {
  if (!Object.hasOwn(GGUF_VALUE_TYPE, type)) {
    throw invalid(`unknown value type ${JSON.stringify(type)} (known: ${Object.keys(GGUF_VALUE_TYPE).join(', ')})`);
  }
  return GGUF_VALUE_TYPE[type as keyof typeof GGUF_VALUE_TYPE];
}

function isArrayLike(value: unknown): value is ArrayLike<unknown> {
  return Array.isArray(value) || ArrayBuffer.isView(value);
}
