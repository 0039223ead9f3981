/**
 * The frozen weights of a model too large for the backend as float32: the matrices stay compact in host
 * memory (their stored type: BF16, F16, Q8_0, Q4_K...), and each enters the backend as float32 when the
 * layer that reads it runs, leaving after it. The embedding is a row gather on the host; the output head
 * enters a chunk of vocabulary rows at a time. Uploads are pinned (kept in the backend) while they fit in
 * `pinBytes`, first come first kept, so a model that nearly fits streams only its remainder.
 */
import * as tf from '@tensorflow/tfjs-core';
import { isWasmFault, wasmFaultError } from '../backend/wasm-faults.ts';
import type { CompactTensor } from '../formats/compact-tensor.ts';
import type { ParameterSpec } from './parameters.ts';

export const EMBEDDING = 'model.embed_tokens.weight';

export class FrozenWeights {
  private readonly pinned = new Map<string, tf.Tensor>();
  private pinnedBytes = 0;

  constructor(
    private readonly tensors: ReadonlyMap<string, CompactTensor>,
    private readonly specs: ReadonlyMap<string, ParameterSpec>,
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

  /** Host bytes held, in the stored types. */
  hostBytes(): number {
    let bytes = 0;
    for (const t of this.tensors.values()) bytes += t.bytes.length;
    return bytes;
  }

  elementCount(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.size;
    return n;
  }

  /**
   * Runs `fn` with the weights whose names start with `prefix` uploaded in the model's memory layout
   * ([in, out] for linear weights), then frees those not pinned. `fn`'s result must not be one of them.
   */
  withUploaded<T>(prefix: string, fn: (lookup: ReadonlyMap<string, tf.Tensor>) => T): T {
    const uploaded = new Map<string, tf.Tensor>();
    const transient: tf.Tensor[] = [];
    try {
      for (const name of this.tensors.keys()) {
        if (!name.startsWith(prefix) || name === EMBEDDING) continue;
        const { tensor, pinned } = this.upload(name, () => this.decodeWhole(name));
        uploaded.set(name, tensor);
        if (!pinned) transient.push(tensor);
      }
      return fn(uploaded);
    } finally {
      tf.dispose(transient);
    }
  }

  /** Embedding rows for token ids [B, T] -> [B, T, D]. */
  embed(ids: tf.Tensor2D): tf.Tensor3D {
    const table = this.compact(EMBEDDING);
    const values = table.gatherRows(ids.dataSync());
    return tf.tensor3d(values, [...ids.shape, table.rowLength] as [number, number, number]);
  }

  /**
   * Columns [start, start + size) of the output head as [D, size], from the rows of the table `name`
   * ([V, D]: lm_head, or the tied embedding). Pinned like any other upload; otherwise the caller disposes it.
   */
  headColumns(name: string, start: number, size: number): { tensor: tf.Tensor2D; pinned: boolean } {
    const table = this.compact(name);
    const { tensor, pinned } = this.upload(`${name}#${start}:${size}`, () => {
      const rows = tf.tensor2d(table.decodeRows(start, size), [size, table.rowLength]);
      const columns = tf.transpose(rows);
      rows.dispose();
      return columns;
    });
    return { tensor: tensor as tf.Tensor2D, pinned };
  }

  dispose(): void {
    tf.dispose([...this.pinned.values()]);
    this.pinned.clear();
    this.pinnedBytes = 0;
  }

  /** The tensor `key` from the pinned set, or made by `make` (and pinned when it fits). */
  private upload(key: string, make: () => tf.Tensor): { tensor: tf.Tensor; pinned: boolean } {
    const kept = this.pinned.get(key);
    if (kept) return { tensor: kept, pinned: true };
    const tensor = uploading(key, make);
    const bytes = tensor.size * 4;
    if (this.pinnedBytes + bytes > this.pinBytes) return { tensor, pinned: false };
    this.pinned.set(key, tf.keep(tensor));
    this.pinnedBytes += bytes;
    return { tensor, pinned: true };
  }

  private decodeWhole(name: string): tf.Tensor {
    const spec = this.specs.get(name);
    const compact = this.compact(name);
    if (!spec) throw new Error(`frozen weights: ${name} is not a parameter of the model`);
    const stored = tf.tensor(compact.toFloat32(), spec.hfShape);
    if (!spec.transposed) return stored;
    const inMemory = tf.transpose(stored);
    stored.dispose();
    return inMemory;
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
