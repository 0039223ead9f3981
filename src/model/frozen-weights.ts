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
 * Q4_K, Q6_K or Q5_0: they enter as their raw bytes in int32 words for the rows products of
 * src/model/fused-ops.ts (BF16: half the bytes of float32; Q4_K: an eighth), nothing decoded on the host.
 * What is pinned follows `pinAs`: 'stored' keeps those raw blocks (inference: the same budget holds 2 to 7
 * times the weights, and decoding reads fewer bytes a token), and every other product gets float32 uploads;
 * 'float32' keeps float32 blocks (training, whose products are all large), and raw blocks go to the rows
 * products only beyond the budget, unpinned.
 */
import * as tf from '@tensorflow/tfjs-core';
import { isWasmFault, wasmFaultError } from '../backend/wasm-faults.ts';
import { QUANT_ROW_FORMATS, ROWS_PRODUCT_ALIGNMENT, quantRowWords } from '../backend/kernels/rows-product.ts';
import { tensorFilledWith } from '../backend/upload.ts';
import type { CompactTensor } from '../formats/compact-tensor.ts';
import { markRawRows, rawRowsKernels, type RawRowType } from './matmul.ts';

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

/** The form in which uploads stay in the backend between uses: as stored (raw rows), or float32. */
export type PinnedForm = 'stored' | 'float32';

/** A pinned block: float32, or its runs of raw rows (one tensor per stored type). */
interface PinnedBlock {
  tensors: tf.Tensor2D[];
  raw: boolean;
}

type RawRun = { from: number; to: number; type: RawRowType };

export class FrozenWeights {
  private readonly pinned = new Map<string, PinnedBlock>();
  private pinnedBytes = 0;
  /** The form pinned blocks take here: as asked, but float32 where no product reads raw rows. */
  readonly pinAs: PinnedForm;

  constructor(
    /** Matrices by Hugging Face name, in the files' [out, in] layout. */
    private readonly tensors: ReadonlyMap<string, CompactTensor>,
    /** Backend bytes that uploaded weights may keep occupying between uses. */
    readonly pinBytes: number,
    pinAs: PinnedForm = 'stored',
  ) {
    // Raw blocks serve only a backend with the rows products that read them.
    this.pinAs = pinAs === 'stored' && rawRowsKernels() ? 'stored' : 'float32';
  }

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
          const key = `${fusedName(group)}#${start}`;
          const runs = this.pinAs === 'stored' ? this.rawTypeRuns(group, start, end) : null;
          const bytes = runs ? runs.reduce((n, { from, to, type }) => n + (to - from) * rawRowWords(type, inFeatures) * 4, 0) : inFeatures * (end - start) * 4;
          if (!this.fitsPinBudget(bytes)) return;
          this.pin(key, runs ? this.uploadRawRuns(key, group, runs) : [uploading(key, () => this.uploadRows(group, start, end))], runs !== null);
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
    tf.dispose([...this.pinned.values()].flatMap((block) => block.tensors));
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
   * Rows [start, end) of the group stacked, under `key`: the pinned block where it serves (raw rows only a
   * rows product reads); as stored where `rawRows` and every matrix's type is one a rows product reads, one
   * tensor for each run of matrices of the same type (Q4_K_M stores some layers' v as Q6_K beside a Q4_K q
   * and k), when raw blocks are what is pinned or the float32 block would not fit; else one float32 tensor.
   * Uploads are pinned in the form `pinAs` names while they fit.
   */
  private uploadBlock(key: string, group: string[], start: number, end: number, rawRows: boolean): { tensor: tf.Tensor2D; pinned: boolean }[] {
    const kept = this.pinned.get(key);
    if (kept && (rawRows || !kept.raw)) return kept.tensors.map((tensor) => ({ tensor, pinned: true }));
    const runs = kept ? null : this.rawTypeRuns(group, start, end);
    const floatBytes = (end - start) * this.compact(group[0]).rowLength * 4;
    if (rawRows && runs && (this.pinAs === 'stored' || !this.fitsPinBudget(floatBytes))) {
      const tensors = this.uploadRawRuns(key, group, runs);
      const pinned = this.pinAs === 'stored' && this.pin(key, tensors, true);
      return tensors.map((tensor) => ({ tensor, pinned }));
    }
    const tensor = uploading(key, () => this.uploadRows(group, start, end));
    // A block pinned raw, or one that could be, leaves the budget to raw blocks when those are what is pinned.
    const pinned = !kept && (this.pinAs === 'float32' || runs === null) && this.pin(key, [tensor], false);
    return [{ tensor, pinned }];
  }

  /** Keeps `tensors` as the block `key` when their bytes fit in the budget; whether they were kept. */
  private pin(key: string, tensors: tf.Tensor2D[], raw: boolean): boolean {
    const bytes = tensors.reduce((n, tensor) => n + tensor.size * 4, 0);
    if (!this.fitsPinBudget(bytes)) return false;
    this.pinned.set(key, { tensors: tensors.map((tensor) => tf.keep(tensor)), raw });
    this.pinnedBytes += bytes;
    return true;
  }

  private fitsPinBudget(bytes: number): boolean {
    return this.pinnedBytes + bytes <= this.pinBytes;
  }

  /**
   * The block's rows [start, end) of the group in runs of one stored type, when a rows product reads every
   * matrix's rows as stored; else null.
   */
  private rawTypeRuns(group: string[], start: number, end: number): RawRun[] | null {
    const runs: RawRun[] = [];
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

  /** The runs of the group's block as raw rows, one marked tensor each (see markRawRows). */
  private uploadRawRuns(key: string, group: string[], runs: RawRun[]): tf.Tensor2D[] {
    return runs.map(({ from, to, type }) => uploading(key, () => markRawRows(this.uploadRawRows(group, from, to, type), type)));
  }

  /**
   * Rows [start, end) of the matrices [out_i, in] stacked, all stored as `type`, their bytes as int32
   * [end - start, words]: BF16 as int32 pairs, GGML blocks with each row padded to whole words.
   */
  private uploadRawRows(group: string[], start: number, end: number, type: RawRowType): tf.Tensor2D {
    const { rowLength } = this.compact(group[0]);
    const words = rawRowWords(type, rowLength);
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

/** int32 words of a raw row of `rowLength` values stored as `type`. */
function rawRowWords(type: RawRowType, rowLength: number): number {
  return type === 'BF16' ? rowLength / 2 : quantRowWords(type, rowLength);
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
