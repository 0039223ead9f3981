/**
 * A little-endian cursor over the first bytes of a file, for parsing the GGUF header without reading the
 * tensor data. Reads past the end of the file are GgufErrors; reads past the end of the bytes loaded so far
 * throw NeedMoreBytes, so the caller can load a longer prefix and parse again.
 */
import type { GGUF_VALUE_BYTES } from './constants.ts';
import { GgufError } from './gguf-error.ts';

export type FixedSizeType = keyof typeof GGUF_VALUE_BYTES;

/** Internal signal: the prefix handed to the parser ends before byte `end`, which lies inside the file. */
export class NeedMoreBytes {
  constructor(readonly end: number) {}
}

export class ByteReader {
  position = 0;
  private readonly view: DataView;
  private readonly text: Buffer;

  constructor(
    readonly path: string,
    private readonly bytes: Uint8Array,
    readonly fileSize: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes between the cursor and the end of the file: the bound for every count read from the file. */
  get remaining(): number {
    return this.fileSize - this.position;
  }

  u32(what: string): number {
    return this.view.getUint32(this.take(4, what), true);
  }

  u64(what: string): bigint {
    return this.view.getBigUint64(this.take(8, what), true);
  }

  /** One fixed-size metadata value; a BOOL comes back as its raw byte. */
  scalar(type: FixedSizeType, what: string): number | bigint {
    const view = this.view;
    switch (type) {
      case 'UINT8':
      case 'BOOL':
        return view.getUint8(this.take(1, what));
      case 'INT8':
        return view.getInt8(this.take(1, what));
      case 'UINT16':
        return view.getUint16(this.take(2, what), true);
      case 'INT16':
        return view.getInt16(this.take(2, what), true);
      case 'UINT32':
        return view.getUint32(this.take(4, what), true);
      case 'INT32':
        return view.getInt32(this.take(4, what), true);
      case 'FLOAT32':
        return view.getFloat32(this.take(4, what), true);
      case 'FLOAT64':
        return view.getFloat64(this.take(8, what), true);
      case 'UINT64':
        return view.getBigUint64(this.take(8, what), true);
      case 'INT64':
        return view.getBigInt64(this.take(8, what), true);
    }
  }

  /**
   * A u64 count of items that each take at least `minItemBytes` in the file; a count the rest of the file
   * cannot hold is rejected here, before anything is allocated for it.
   */
  count(what: string, minItemBytes: number): number {
    const at = this.position;
    const count = this.u64(what);
    if (count > BigInt(Math.floor(this.remaining / minItemBytes))) {
      throw new GgufError(
        this.path,
        'COUNT_TOO_LARGE',
        `${what} at byte ${at} is ${count}, but ${minItemBytes === 1 ? '' : `at ${minItemBytes} bytes each `}` +
          `that needs more than the ${this.remaining} bytes left in the file`,
      );
    }
    return Number(count);
  }

  /** A GGUF string: u64 byte length, then UTF-8 (decoded leniently: invalid bytes become U+FFFD). */
  string(what: string): string {
    const length = this.count(`length of ${what}`, 1);
    const start = this.take(length, what);
    return this.text.toString('utf8', start, start + length);
  }

  /** A copy of the next `length` bytes, aligned for any typed array. */
  copy(length: number, what: string): Uint8Array {
    const start = this.take(length, what);
    return this.bytes.slice(start, start + length);
  }

  /** Moves the cursor past `length` bytes and returns where they start. */
  private take(length: number, what: string): number {
    const start = this.position;
    const end = start + length;
    if (end > this.fileSize) {
      throw new GgufError(this.path, 'TRUNCATED', `file ends at byte ${this.fileSize}, inside ${what} (bytes ${start}..${end})`);
    }
    if (end > this.bytes.length) throw new NeedMoreBytes(end);
    this.position = end;
    return start;
  }
}
