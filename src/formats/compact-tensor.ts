/**
 * A tensor kept in host memory in the type it was stored in (F32, F16, BF16 from safetensors; Q8_0, Q4_K,
 * Q6_K... from GGUF), decoded to float32 a few rows at a time. Frozen base weights live like this so a 1B-3B
 * model never exists as float32 as a whole. Rows are the leading axis of the row-major shape and always hold
 * whole blocks (GGUF rows are a multiple of the block size), so rows can be sliced, gathered and reordered
 * without decoding.
 */
import { GGML_BLOCK_LAYOUT } from './gguf/constants.ts';
import { DEQUANTIZERS, type DequantizableType } from './gguf/dequantize.ts';

export type CompactType = DequantizableType;

export const COMPACT_TYPES = Object.keys(DEQUANTIZERS) as CompactType[];

export function isCompactType(type: string): type is CompactType {
  return Object.hasOwn(DEQUANTIZERS, type);
}

/** Where in each block a float sits whose exponent to check: the value itself, or a quantized block's float16 scales. */
const SCALE_OFFSETS: Record<CompactType, readonly number[]> = {
  F32: [0],
  F16: [0],
  BF16: [0],
  Q8_0: [0],
  Q4_0: [0],
  Q5_0: [0],
  Q5_1: [0, 2],
  Q4_K: [0, 2],
  Q5_K: [0, 2],
  Q6_K: [208],
};

export class CompactTensor {
  /** Values in one row (the product of the trailing dimensions; 1 for a vector's elements). */
  readonly rowLength: number;
  readonly rowBytes: number;

  constructor(
    readonly type: CompactType,
    /** Row-major shape, as in the file (Hugging Face [out, in] for linear weights). */
    readonly shape: readonly number[],
    readonly bytes: Uint8Array,
  ) {
    this.rowLength = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    const { blockSize, typeSize } = GGML_BLOCK_LAYOUT[type];
    if (this.rowLength % blockSize !== 0) {
      throw new RangeError(`a ${type} tensor of shape [${shape}] has rows of ${this.rowLength} values, not a whole number of ${blockSize}-value blocks`);
    }
    this.rowBytes = (this.rowLength / blockSize) * typeSize;
    if (bytes.length !== this.rows * this.rowBytes) {
      throw new RangeError(`a ${type} tensor of shape [${shape}] needs ${this.rows * this.rowBytes} bytes, got ${bytes.length}`);
    }
  }

  /** Float32 values as a compact tensor (their bytes, not a copy). */
  static fromFloat32(shape: readonly number[], values: Float32Array): CompactTensor {
    return new CompactTensor('F32', shape, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }

  get rows(): number {
    return this.shape[0] ?? 1;
  }

  /**
   * The index of the first stored value (or block, for quantized types: of the block's first value) that
   * is NaN or infinite, read from the stored bits without decoding; -1 when all are finite. Quantized
   * blocks are judged by their float16 scales, the only place a non-finite number can hide in them.
   */
  firstNonFinite(): number {
    const floats = this.type === 'F32' || this.type === 'F16' || this.type === 'BF16';
    if (floats && this.bytes.byteOffset % 4 === 0 && this.bytes.length % 4 === 0) return this.firstNonFiniteFloat();
    const { blockSize, typeSize } = GGML_BLOCK_LAYOUT[this.type];
    const bytes = this.bytes;
    const offsets = SCALE_OFFSETS[this.type];
    for (let block = 0, at = 0; at < bytes.length; block++, at += typeSize) {
      for (const offset of offsets) {
        if (this.type === 'F32' || this.type === 'BF16') {
          // The exponent sits in the top two bytes of both (little-endian): all ones is NaN or Inf.
          const high = at + offset + (this.type === 'F32' ? 2 : 0);
          if ((bytes[high + 1] & 0x7f) === 0x7f && (bytes[high] & 0x80) === 0x80) return block * blockSize;
        } else if ((bytes[at + offset + 1] & 0x7c) === 0x7c) {
          return block * blockSize;
        }
      }
    }
    return -1;
  }

  /** The float types through word views (several times faster per value than byte by byte). */
  private firstNonFiniteFloat(): number {
    const { buffer, byteOffset, length } = this.bytes;
    if (this.type === 'F32') {
      const words = new Uint32Array(buffer, byteOffset, length / 4);
      for (let i = 0; i < words.length; i++) if ((words[i] & 0x7f800000) === 0x7f800000) return i;
      return -1;
    }
    // Two 16-bit values per word: low half first (little-endian).
    const low = this.type === 'BF16' ? 0x7f80 : 0x7c00;
    const high = low * 0x10000;
    const words = new Uint32Array(buffer, byteOffset, length / 4);
    for (let i = 0; i < words.length; i++) {
      const word = words[i];
      if ((word & low) === low) return 2 * i;
      if ((word & high) >>> 0 === high) return 2 * i + 1;
    }
    return -1;
  }

  get size(): number {
    return this.rows * this.rowLength;
  }

  /** All values as float32. */
  toFloat32(): Float32Array {
    return this.decodeRows(0, this.rows);
  }

  /** Rows [start, start + count) as float32, row-major. */
  decodeRows(start: number, count: number, out: Float32Array = new Float32Array(count * this.rowLength)): Float32Array {
    this.checkRows(start, count);
    DEQUANTIZERS[this.type](this.bytes.subarray(start * this.rowBytes, (start + count) * this.rowBytes), out);
    return out;
  }

  /** The given rows, in that order, as float32 [ids.length, rowLength]: an embedding lookup. */
  gatherRows(ids: ArrayLike<number>): Float32Array {
    const out = new Float32Array(ids.length * this.rowLength);
    for (let i = 0; i < ids.length; i++) this.decodeRows(ids[i], 1, out.subarray(i * this.rowLength, (i + 1) * this.rowLength));
    return out;
  }

  /** Rows [start, end) without copying. */
  sliceRows(start: number, end: number): CompactTensor {
    this.checkRows(start, end - start);
    return new CompactTensor(this.type, [end - start, ...this.shape.slice(1)], this.bytes.subarray(start * this.rowBytes, end * this.rowBytes));
  }

  /** A copy whose row i is this tensor's row `order[i]`. */
  reorderRows(order: ArrayLike<number>): CompactTensor {
    const bytes = new Uint8Array(order.length * this.rowBytes);
    for (let i = 0; i < order.length; i++) bytes.set(this.bytes.subarray(order[i] * this.rowBytes, (order[i] + 1) * this.rowBytes), i * this.rowBytes);
    return new CompactTensor(this.type, [order.length, ...this.shape.slice(1)], bytes);
  }

  private checkRows(start: number, count: number): void {
    if (!(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0 && start + count <= this.rows)) {
      throw new RangeError(`rows [${start}, ${start + count}) are outside a tensor of ${this.rows} rows`);
    }
  }
}
