/** A growable little-endian byte buffer, for encoding the GGUF header in memory before it is written. */
export class ByteWriter {
  private buffer = new Uint8Array(1 << 12);
  private view = new DataView(this.buffer.buffer);
  private length = 0;

  get position(): number {
    return this.length;
  }

  /** The bytes written so far (a view, not a copy). */
  result(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }

  u8(value: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, value);
  }

  i8(value: number): void {
    const at = this.reserve(1);
    this.view.setInt8(at, value);
  }

  u16(value: number): void {
    const at = this.reserve(2);
    this.view.setUint16(at, value, true);
  }

  i16(value: number): void {
    const at = this.reserve(2);
    this.view.setInt16(at, value, true);
  }

  u32(value: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, value, true);
  }

  i32(value: number): void {
    const at = this.reserve(4);
    this.view.setInt32(at, value, true);
  }

  f32(value: number): void {
    const at = this.reserve(4);
    this.view.setFloat32(at, value, true);
  }

  f64(value: number): void {
    const at = this.reserve(8);
    this.view.setFloat64(at, value, true);
  }

  u64(value: bigint | number): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(value), true);
  }

  i64(value: bigint | number): void {
    const at = this.reserve(8);
    this.view.setBigInt64(at, BigInt(value), true);
  }

  /** A GGUF string: u64 byte length, then the UTF-8 bytes. */
  string(value: string): void {
    const encoded = Buffer.from(value, 'utf8');
    this.u64(encoded.length);
    const at = this.reserve(encoded.length);
    this.buffer.set(encoded, at);
  }

  bytes(values: Uint8Array): void {
    const at = this.reserve(values.length);
    this.buffer.set(values, at);
  }

  zeros(count: number): void {
    const at = this.reserve(count);
    this.buffer.fill(0, at, at + count);
  }

  /** Makes room for `count` bytes and returns where they start; the buffer and view may be replaced. */
  private reserve(count: number): number {
    const start = this.length;
    if (start + count > this.buffer.length) {
      const grown = new Uint8Array(Math.max(2 * this.buffer.length, start + count));
      grown.set(this.buffer.subarray(0, start));
      this.buffer = grown;
      this.view = new DataView(grown.buffer);
    }
    this.length = start + count;
    return start;
  }
}
