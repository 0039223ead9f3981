/**
 * Typed GGUF metadata values, as the reader returns them and the writer takes them, and typed access by key.
 * Numeric arrays are typed arrays, so a 150k-entry `tokenizer.ggml.scores` is one Float32Array.
 */
import { GgufError } from './gguf-error.ts';

export type GgufNumberType = 'UINT8' | 'INT8' | 'UINT16' | 'INT16' | 'UINT32' | 'INT32' | 'FLOAT32' | 'FLOAT64';
export type GgufBigIntType = 'UINT64' | 'INT64';
export type GgufNumberArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | readonly number[];

export type GgufArray =
  | { type: 'ARRAY'; itemType: GgufNumberType; value: GgufNumberArray }
  | { type: 'ARRAY'; itemType: GgufBigIntType; value: BigUint64Array | BigInt64Array | readonly bigint[] }
  | { type: 'ARRAY'; itemType: 'BOOL'; value: readonly boolean[] }
  | { type: 'ARRAY'; itemType: 'STRING'; value: readonly string[] }
  | { type: 'ARRAY'; itemType: 'ARRAY'; value: readonly GgufArray[] };

export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: 'BOOL'; value: boolean }
  | { type: 'STRING'; value: string }
  | GgufArray;

/** Read-only access to a file's metadata; the typed getters return undefined for a missing key. */
export class GgufMetadata {
  constructor(
    private readonly file: string,
    private readonly entries: ReadonlyMap<string, GgufValue>,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** Keys in file order. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Every value without its type tag, for code that reads decoded values (the tokenizer). */
  values(): Map<string, unknown> {
    return new Map([...this.entries].map(([key, entry]) => [key, entry.value]));
  }

  get(key: string): GgufValue | undefined {
    return this.entries.get(key);
  }

  getString(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.type !== 'STRING') throw this.wrongType(key, entry, 'a string');
    return entry.value;
  }

  getBool(key: string): boolean | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.type !== 'BOOL') throw this.wrongType(key, entry, 'a bool');
    return entry.value;
  }

  /** Any numeric scalar; 64-bit integers only when they fit a JS number exactly. */
  getNumber(key: string): number | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.type === 'UINT64' || entry.type === 'INT64') return this.safeNumber(key, entry.value);
    if (typeof entry.value !== 'number') throw this.wrongType(key, entry, 'a number');
    return entry.value;
  }

  getStringArray(key: string): readonly string[] | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.type !== 'ARRAY' || entry.itemType !== 'STRING') throw this.wrongType(key, entry, 'an array of strings');
    return entry.value;
  }

  /** An array of any numeric item type, as plain numbers. */
  getNumberArray(key: string): number[] | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.type !== 'ARRAY' || entry.itemType === 'STRING' || entry.itemType === 'BOOL' || entry.itemType === 'ARRAY') {
      throw this.wrongType(key, entry, 'an array of numbers');
    }
    if (entry.itemType === 'UINT64' || entry.itemType === 'INT64') {
      return Array.from(entry.value as ArrayLike<bigint>, (value) => this.safeNumber(key, value));
    }
    return Array.from(entry.value as ArrayLike<number>);
  }

  private safeNumber(key: string, value: bigint): number {
    const number = Number(value);
    if (!Number.isSafeInteger(number)) {
      throw new GgufError(this.file, 'UNSAFE_INTEGER', `metadata '${key}' = ${value} does not fit a JS number exactly`);
    }
    return number;
  }

  private wrongType(key: string, entry: GgufValue, expected: string): GgufError {
    return new GgufError(this.file, 'WRONG_METADATA_TYPE', `metadata '${key}' should be ${expected}, but it is ${describeType(entry)}`);
  }
}

export function describeType(value: GgufValue): string {
  return value.type === 'ARRAY' ? `an ARRAY of ${value.itemType}` : value.type;
}
