/**
 * The frozen weights of a model too large for the backend as float32: the matrices stay compact in host
 * memory (their stored type: BF16, F16, Q8_0, Q4_K...), and each enters the backend as float32 when the
 * layer that reads it runs, leaving after it. The embedding is a row gather on the host; the output head
 * enters a chunk of vocabulary rows at a time.
 *
 * Weights are decoded as they are uploaded (on wasm straight into its heap) in the files' [out, in] layout, which products read
 * transposed (no transpose on the host, nor a second one in the wasm BatchMatMul kernel to undo it); the
 * projections that read the same input (q|k|v, gate|up) are stacked, in row blocks (see UPLOAD_VALUES):
 * one float32 copy per weight in the backend.
 * Uploads are pinned (kept in the backend) while they fit in `pinBytes`, first come first kept, so a model
 * that nearly fits streams only its remainder.
 *
 * A product of few rows (decoding) may instead take matrices as stored (`rawRows`) where they are BF16, Q8_0,
 * Q4_K, Q6_K or Q5_0: blocks beyond the pinning budget then enter as their raw bytes in int32 words for the rows
 * products of src/model/fused-ops.ts (BF16: half the bytes of float32; Q4_K: an eighth), nothing decoded
 * on the host. Those are never pinned: pinned blocks stay float32 for every other product.
 */
import * as tf from '@tensorflow/tfjs-core';
import { isWasmFault, wasmFaultError } from '../backend/wasm-faults.ts';
import { QUANT_ROW_FORMATS, ROWS_PRODUCT_ALIGNMENT, quantRowWords } from '../backend/kernels/rows-product.ts';
import { tensorFilledWith } from '../backend/upload.ts';
import type { CompactTensor } from '../formats/compact-tensor.ts';
import { markRawRows, type RawRowType } from './matmul.ts';

export const EMBEDDING = 'model.embed_tokens.weight';

/**
 * Values of one upload: a head chunk, or a row block of a layer's matrix (8M: 32 MiB as float32).
 * Every large allocation of a streamed step is then about this size, so the wasm allocator reuses the
 * holes they leave; uploads of 192 MiB (a 3B model's gate|up) fragmented the heap past 4 GiB around
 * 1.4 GiB of live tensors. XNNPACK also keeps a packed copy of each right-hand matrix while it lives.
 */
export const UPLOAD_VALUES = 1 << 23;

/** The name under which projections uploaded side by side are looked up: their weight names joined. */
export function fusedName(weights: readonly string[]): string {
  return weights.join('|');
}

/** Weights of a layer that the forward pass multiplies as one (see CausalLM.project). */
const FUSED_GROUPS = [
  ['self_attn.q_proj.weight', 'self_attn.k_proj.weight', 'self_attn.v_proj.weight'],
  ['mlp.gate_proj.weight', 'mlp.up_proj.weight'],
];

export class FrozenWeights {
  private readonly pinned = new Map<string, tf.Tensor>();
  private pinnedBytes = 0;

  constructor(
    /** Matrices by Hugging Face name, in the files' [out, in] layout. */
    private readonly tensors: ReadonlyMap<string, CompactTensor>,
    /** Backend bytes that uploaded weights may keep occupying between uses. */
    readonly pinBytes: number,
  ) {}

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  compact(name: string): CompactTensor {
    const tensor = this.tensors.get(name);
    if (!tensor) throw new Error(`frozen weights: no tensor ${name}`);
    return tensor;
  }

  elementCount(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.size;
    return n;
  }

  /**
   * Runs `fn` with the weights of the layer whose names start with `prefix` uploaded as [out, in]
   * matrices in row blocks (fused groups stacked, under fusedName), then frees those not pinned. `fn`'s
   * result must not be one of them.
   */
  withUploaded<T>(prefix: string, fn: (lookup: ReadonlyMap<string, tf.Tensor2D[]>) => T, { rawRows = false } = {}): T {
    const uploaded = new Map<string, tf.Tensor2D[]>();
    const transient: tf.Tensor[] = [];
    try {
      for (const group of this.groupsUnder(prefix)) {
        const blocks = this.rowBlocks(group).flatMap(([start, end]) =>
          this.uploadBlock(`${fusedName(group)}#${start}`, group, start, end, rawRows).map(({ tensor, pinned }) => {
            if (!pinned) transient.push(tensor);
            return tensor;
          }),
        );
        uploaded.set(fusedName(group), blocks);
      }
      return fn(uploaded);
    } finally {
      tf.dispose(transient);
    }
  }

  /**
   * Uploads and pins layers in order, whole fused groups, while they fit in pinBytes: done before any other
   * tensor exists, the pinned weights sit together at the start of the backend's memory instead of
   * between short-lived tensors, where their gaps would grow the (never shrinking) wasm heap.
   */
  preload(layerPrefixes: readonly string[]): void {
    for (const prefix of layerPrefixes) {
      for (const group of this.groupsUnder(prefix)) {
        const inFeatures = this.compact(group[0]).rowLength;
        for (const [start, end] of this.rowBlocks(group)) {
          if (!this.fitsPinBudget(inFeatures * (end - start) * 4)) return;
          this.upload(`${fusedName(group)}#${start}`, () => this.uploadRows(group, start, end));
        }
      }
    }
  }

  /** Embedding rows for token ids [B, T] -> [B, T, D]. */
  embed(ids: tf.Tensor2D): tf.Tensor3D {
    const table = this.compact(EMBEDDING);
    const values = table.gatherRows(ids.dataSync());
    return tf.tensor3d(values, [...ids.shape, table.rowLength] as [number, number, number]);
  }

  /**
   * Vocabulary rows [start, start + size) of the output head as [size, D], as the table `name` holds them
   * ([V, D]: lm_head, or the tied embedding): products take them transposed, so they are uploaded without a
   * host transpose. Pinned like any other upload; otherwise the caller disposes it.
   */
  headRows(name: string, start: number, size: number, { rawRows = false } = {}): { tensor: tf.Tensor2D; pinned: boolean } {
    const [rows] = this.uploadBlock(`${name}#${start}:${size}`, [name], start, start + size, rawRows); // one matrix: one stored type
    return rows;
  }

  dispose(): void {
    tf.dispose([...this.pinned.values()]);
    this.pinned.clear();
    this.pinnedBytes = 0;
  }

  /** The layer's matrices in upload groups: each fused group whole, every other matrix alone. */
  private groupsUnder(prefix: string): string[][] {
    const names = this.names().filter((name) => name.startsWith(prefix) && name !== EMBEDDING);
    const fused = FUSED_GROUPS.map((group) => group.map((part) => prefix + part)).filter((group) => group.every((name) => names.includes(name)));
    const inGroups = new Set(fused.flat());
    return [...fused, ...names.filter((name) => !inGroups.has(name)).map((name) => [name])];
  }

  /** Row ranges [start, end) of a group's stacked [sum of out_i, in] matrix, each at most UPLOAD_VALUES. */
  private rowBlocks(group: string[]): [number, number][] {
    const inFeatures = this.compact(group[0]).rowLength;
    const outFeatures = group.reduce((n, name) => n + this.compact(name).rows, 0);
    const rowsPerBlock = Math.max(64, Math.floor(UPLOAD_VALUES / inFeatures / 64) * 64);
    const blocks: [number, number][] = [];
    for (let start = 0; start < outFeatures; start += rowsPerBlock) blocks.push([start, Math.min(outFeatures, start + rowsPerBlock)]);
    return blocks;
  }

  /** Rows [start, end) of the matrices [out_i, in] stacked, as one [end - start, in] tensor. */
  private uploadRows(group: string[], start: number, end: number): tf.Tensor2D {
    const inFeatures = this.compact(group[0]).rowLength;
    return tensorFilledWith([end - start, inFeatures], 'float32', (bytes) => {
      const values = asFloats(bytes);
      this.forStackedRows(group, start, end, (part, from, to, at) => part.decodeRows(from, to - from, values.subarray(at * inFeatures, (at + to - from) * inFeatures)));
    }) as tf.Tensor2D;
  }

  /**
   * Rows [start, end) of the group stacked, under `key`: as stored (`rawRows`, where every matrix's type is
   * one a rows product reads) when the block is neither pinned nor would be, one tensor for each run of
   * matrices of the same type (Q4_K_M stores some layers' v as Q6_K beside a Q4_K q and k); else one
   * float32 tensor, from the pinned set or uploaded (and pinned when it fits).
   */
  private uploadBlock(key: string, group: string[], start: number, end: number, rawRows: boolean): { tensor: tf.Tensor2D; pinned: boolean }[] {
    const floats = (end - start) * this.compact(group[0]).rowLength;
    const runs = rawRows && !this.pinned.has(key) && !this.fitsPinBudget(floats * 4) ? this.rawTypeRuns(group, start, end) : null;
    if (runs !== null) {
      return runs.map(({ from, to, type }) => ({ tensor: uploading(key, () => markRawRows(this.uploadRawRows(group, from, to, type), type)), pinned: false }));
    }
    const { tensor, pinned } = this.upload(key, () => this.uploadRows(group, start, end));
    return [{ tensor: tensor as tf.Tensor2D, pinned }];
  }

  /** The tensor `key` from the pinned set, or made by `make` (and pinned when it fits). */
  private upload(key: string, make: () => tf.Tensor): { tensor: tf.Tensor; pinned: boolean } {
    const kept = this.pinned.get(key);
    if (kept) return { tensor: kept, pinned: true };
    const tensor = uploading(key, make);
    const bytes = tensor.size * 4;
    if (!this.fitsPinBudget(bytes)) return { tensor, pinned: false };
    this.pinned.set(key, tf.keep(tensor));
    this.pinnedBytes += bytes;
    return { tensor, pinned: true };
  }

  private fitsPinBudget(bytes: number): boolean {
    return this.pinnedBytes + bytes <= this.pinBytes;
  }

  /**
   * The block's rows [start, end) of the group in runs of one stored type, when a rows product reads every
   * matrix's rows as stored; else null.
   */
  private rawTypeRuns(group: string[], start: number, end: number): { from: number; to: number; type: RawRowType }[] | null {
    const runs: { from: number; to: number; type: RawRowType }[] = [];
    let readable = true;
    this.forStackedRows(group, start, end, (part, from, to, at) => {
      const readableType = (part.type === 'BF16' || Object.hasOwn(QUANT_ROW_FORMATS, part.type)) && part.rowLength % ROWS_PRODUCT_ALIGNMENT === 0;
      if (!readableType) readable = false;
      const last = runs.at(-1);
      if (last?.type === part.type) last.to = start + at + to - from;
      else runs.push({ from: start + at, to: start + at + to - from, type: part.type as RawRowType });
    });
    return readable ? runs : null;
  }

  /**
   * Rows [start, end) of the matrices [out_i, in] stacked, all stored as `type`, their bytes as int32
   * [end - start, words]: BF16 as int32 pairs, GGML blocks with each row padded to whole words.
   */
  private uploadRawRows(group: string[], start: number, end: number, type: RawRowType): tf.Tensor2D {
    const { rowLength } = this.compact(group[0]);
    const words = type === 'BF16' ? rowLength / 2 : quantRowWords(type, rowLength);
    const stride = words * 4;
    return tensorFilledWith([end - start, words], 'int32', (bytes) =>
      this.forStackedRows(group, start, end, (part, from, to, at) => {
        const partBytes = part.rowBytes;
        if (stride === partBytes) bytes.set(part.bytes.subarray(from * partBytes, to * partBytes), at * stride);
        else for (let r = from; r < to; r++) bytes.set(part.bytes.subarray(r * partBytes, (r + 1) * partBytes), (at + r - from) * stride);
      }),
    ) as tf.Tensor2D;
  }

  /**
   * For each matrix of the group holding rows of the stack's block [start, end): its rows [from, to), in its
   * own numbering, and the block row `at` where they go.
   */
  private forStackedRows(group: string[], start: number, end: number, each: (part: CompactTensor, from: number, to: number, at: number) => void): void {
    let first = 0; // the part's first row in the stack
    for (const part of group.map((name) => this.compact(name))) {
      const [from, to] = [Math.max(start, first), Math.min(end, first + part.rows)];
      if (from < to) each(part, from - first, to - first, from - start);
      first += part.rows;
    }
  }
}

/** make(), with a wasm heap exhausted by the upload reported as such. */
function uploading<T>(name: string, make: () => T): T {
  try {
    return make();
  } catch (error) {
    throw isWasmFault(error) ? wasmFaultError(`uploading ${name}`, error) : error;
  }
}

/** The float32 values of a byte view (a tensor's, aligned). */
function asFloats(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}
