import * as tf from '@tensorflow/tfjs-core';
import { isRecordingGradients, withoutGradients } from '../backend/tape.ts';
import type { CompactTensor } from '../formats/compact-tensor.ts';
import type { HostTensor } from '../formats/safetensors.ts';
import { Rng } from '../util/rng.ts';
import { layerWindow, type ModelConfig } from './config.ts';
import type { FirstVisibleKey } from './causal-attention.ts';
import { EMBEDDING, FrozenWeights, fusedName, UPLOAD_VALUES, type PinnedForm } from './frozen-weights.ts';
import { KVCache } from './kv-cache.ts';
import { configuredRmsNorm, decoderBlock, type AttentionInputs, type Projection } from './layers.ts';
import { linear, linearOfRows, takesRawRows } from './matmul.ts';
import { memoryShape, parameterSpecs, type ParameterSpec } from './parameters.ts';
import { recomputed } from './recompute.ts';
import { localRopeConfig, rotaryTables, rowRotaryTables } from './rope.ts';
import { softcap } from './softcap.ts';
import { headInputGradient } from './streamed-head.ts';
import { disposeAll, elementCount, ownedVariable } from './variables.ts';

export interface InitOptions {
  seed: number;
  /** Standard deviation of the normal init of embeddings and linear weights (HF's initializer_range). */
  std?: number;
}

/**
 * What the rows of a batch hold besides one sequence each from position 0. Either:
 * - `padLeft`: rows of different lengths padded on the left: row b starts with padLeft[b] padding positions
 *   that no query attends to, and its real tokens take positions 0, 1, ... as they would alone. The counts
 *   cover the whole sequence, cached positions included, so they stay the same at every step of a decoding;
 * - `segments`: packed rows (training, no cache): row b holds examples of lengths segments[b] end to end,
 *   each at positions 0, 1, ... and attending only to itself (a block-diagonal causal mask), so each gets
 *   the logits it has alone. Positions after the last example form one more segment (padding).
 */
export type BatchLayout = { padLeft: readonly number[]; segments?: undefined } | { segments: readonly (readonly number[])[]; padLeft?: undefined };

/** Each row's positions and the first key each position sees, from a layout. */
interface RowPositions {
  positionOf(row: number, t: number): number;
  firstKey: FirstVisibleKey;
}

export interface CompactLoadOptions {
  /** Backend bytes that streamed weights may stay in between uses (see FrozenWeights). */
  pinBytes: number;
  /** The form they stay in: as stored for inference (default), float32 for training (see FrozenWeights). */
  pinAs?: PinnedForm;
  /** Vocabulary rows of the streamed head per product; default UPLOAD_VALUES' worth. */
  headChunkRows?: number;
}

/**
 * A decoder-only transformer of the Llama family (Llama, Mistral, Qwen2, SmolLM, TinyLlama), shaped by its
 * config. Parameters are tf.Variables named as in Hugging Face checkpoints; a pretrained base too large for
 * the backend keeps its matrices compact in host memory instead (`frozen`) and streams them in per layer.
 */
export class CausalLM {
  readonly config: ModelConfig;
  /** Weights held in the backend: every weight, or a streamed model's vectors (norms, biases). */
  readonly params: Map<string, tf.Variable>;
  /** A streamed model's matrices, compact in host memory; null when every weight is in `params`. */
  readonly frozen: FrozenWeights | null;
  /**
   * Recompute each decoder layer in the backward pass instead of keeping its activations. Layers whose
   * weights are streamed always are.
   */
  recompute = false;
  private readonly specs: Map<string, ParameterSpec>;
  /** The running layer's streamed weights. */
  private active: ReadonlyMap<string, tf.Tensor2D[]> | null = null;

  private readonly headChunkRows: number;

  private constructor(config: ModelConfig, params: Map<string, tf.Variable>, frozen: FrozenWeights | null = null, headChunkRows?: number) {
    this.config = config;
    this.params = params;
    this.frozen = frozen;
    this.headChunkRows = headChunkRows ?? Math.max(1, Math.floor(UPLOAD_VALUES / config.hiddenSize));
    this.specs = new Map(parameterSpecs(config).map((s) => [s.name, s]));
  }

  /**
   * Random initialisation, deterministic for a seed. The output projections of each residual branch are
   * scaled by 1/sqrt(2 * layers) so the residual stream's variance does not grow with depth (GPT-2).
   */
  static init(config: ModelConfig, { seed, std = 0.02 }: InitOptions): CausalLM {
    const rng = new Rng(seed);
    const residualStd = std / Math.sqrt(2 * config.numLayers);
    const params = new Map<string, tf.Variable>();
    for (const spec of parameterSpecs(config)) {
      const size = spec.hfShape.reduce((a, b) => a * b, 1);
      const values = new Float32Array(size);
      if (spec.init === 'ones') values.fill(1);
      if (spec.init === 'normal' || spec.init === 'residual-normal') {
        const s = spec.init === 'normal' ? std : residualStd;
        for (let i = 0; i < size; i++) values[i] = rng.normal() * s;
      }
      params.set(spec.name, ownedVariable(tf.tensor(values, memoryShape(spec))));
    }
    return new CausalLM(config, params);
  }

  /** Builds the model from tensors in Hugging Face layout, read one at a time. */
  static async fromHfTensors(config: ModelConfig, read: (name: string) => Promise<HostTensor | undefined>): Promise<CausalLM> {
    const params = new Map<string, tf.Variable>();
    try {
      for (const spec of parameterSpecs(config)) {
        const tensor = await read(spec.name);
        if (!tensor) throw new Error(`weights: missing tensor ${spec.name} (shape [${spec.hfShape}])`);
        if (tensor.shape.join() !== spec.hfShape.join()) {
          throw new Error(`weights: ${spec.name} has shape [${tensor.shape}], the config implies [${spec.hfShape}]`);
        }
        params.set(spec.name, ownedVariable(fromHfLayout(tensor.data, spec)));
      }
    } catch (error) {
      disposeAll(params);
      throw error;
    }
    return new CausalLM(config, params);
  }

  /**
   * A model whose matrices stay as `read` gives them (compact, in host memory) and whose vectors (norms,
   * biases) are held in the backend. The weights are frozen: nothing streamed gets a gradient.
   */
  static async fromCompactTensors(
    config: ModelConfig,
    read: (name: string) => Promise<CompactTensor | undefined>,
    { pinBytes, pinAs, headChunkRows }: CompactLoadOptions,
  ): Promise<CausalLM> {
    const specs = parameterSpecs(config);
    const params = new Map<string, tf.Variable>();
    const compact = new Map<string, CompactTensor>();
    try {
      for (const spec of specs) {
        const tensor = await read(spec.name);
        if (!tensor) throw new Error(`weights: missing tensor ${spec.name} (shape [${spec.hfShape}])`);
        if (tensor.shape.join() !== spec.hfShape.join()) {
          throw new Error(`weights: ${spec.name} has shape [${tensor.shape}], the config implies [${spec.hfShape}]`);
        }
        if (spec.hfShape.length === 1) params.set(spec.name, ownedVariable(tf.tensor(tensor.toFloat32(), spec.hfShape), false));
        else compact.set(spec.name, tensor);
      }
    } catch (error) {
      disposeAll(params);
      throw error;
    }
    const frozen = new FrozenWeights(compact, pinBytes, pinAs);
    frozen.preload(Array.from({ length: config.numLayers }, (_, layer) => `model.layers.${layer}.`));
    return new CausalLM(config, params, frozen, headChunkRows);
  }

  /** All parameters in Hugging Face names, shapes and layout, in checkpoint order. */
  hfTensors(): HostTensor[] {
    return [...this.eachHfTensor()];
  }

  /** hfTensors one at a time, so a writer holds one float32 tensor of a streamed model at once. */
  *eachHfTensor(): Generator<HostTensor> {
    for (const spec of this.specs.values()) {
      const data = this.frozen?.has(spec.name) ? this.frozen.compact(spec.name).toFloat32() : toHfLayout(this.params.get(spec.name)!, spec);
      yield { name: spec.name, shape: spec.hfShape, data };
    }
  }

  /**
   * Logits [B, T, V] for token ids [B, T]; with a cache, the ids continue the cached positions. With a
   * layout, the rows are left-padded sequences of different lengths.
   */
  forward(ids: tf.Tensor2D, cache?: KVCache, project: Projection = this.project, layout?: BatchLayout): tf.Tensor3D {
    return tf.tidy(() => this.logits(this.hidden(ids, cache, project, layout)));
  }

  /**
   * A KV cache for this model: its windowed layers keep no more than their window. `positions`: the most a
   * generation will hold (prompt and new tokens), so decoding allocates its buffers once.
   */
  newCache(positions?: number): KVCache {
    const { numLayers, maxPositionEmbeddings } = this.config;
    const windows = Array.from({ length: numLayers }, (_, layer) => layerWindow(this.config, layer));
    return new KVCache(numLayers, windows, positions === undefined ? undefined : Math.min(positions, maxPositionEmbeddings));
  }

  /** Final-norm hidden states [B, T, D]. */
  hidden(ids: tf.Tensor2D, cache?: KVCache, project: Projection = this.project, layout?: BatchLayout): tf.Tensor3D {
    const [B, T] = ids.shape;
    const offset = cache?.length ?? 0;
    const rows = layout && rowPositions(layout, B, offset, T);
    const queryScale = 1 / Math.sqrt(this.config.queryPreAttnScalar);
    const tables = (config: ModelConfig) =>
      rows ? rowRotaryTables(config, B, T, rows.positionOf, queryScale) : rotaryTables(config, offset, T, queryScale);
    const rope = tables(this.config);
    const localRope = this.config.localRopeTheta === null ? rope : tables(localRopeConfig(this.config));
    let x = this.frozen?.has(EMBEDDING) ? this.frozen.embed(ids) : (tf.gather(this.param(EMBEDDING), ids) as tf.Tensor3D); // [B, T, D]
    if (this.config.embeddingScale !== 1) x = tf.mul(x, this.config.embeddingScale);
    const windowed = slidingWindowKeys(this.config, rows?.firstKey);
    for (let layer = 0; layer < this.config.numLayers; layer++) {
      const sliding = layerWindow(this.config, layer) !== null;
      x = this.decoderLayer(x, layer, project, { rope: sliding ? localRope : rope, cache, firstKey: sliding ? windowed : rows?.firstKey });
    }
    return configuredRmsNorm(x, 'model.norm.weight', this.config, this.param) as tf.Tensor3D;
  }

  /**
   * One decoder layer, with its streamed weights uploaded while it runs. Under a gradient tape a streamed
   * or recomputed layer keeps only its input for the backward pass, which runs it again.
   */
  private decoderLayer(x: tf.Tensor3D, layer: number, project: Projection, inputs: AttentionInputs): tf.Tensor3D {
    const prefix = `model.layers.${layer}.`;
    const run = (input: tf.Tensor3D, rope = inputs.rope) =>
      this.withLayerWeights(prefix, input, () => decoderBlock(input, layer, this.config, this.param, project, { ...inputs, rope }));
    // Without a tape, a layer's intermediates are garbage once it returns: free them per layer, not when
    // the caller's tidy ends (at 512 tokens a 1B model's 16 layers would hold 4 GiB of them).
    if (!isRecordingGradients()) return tf.tidy(() => run(x));
    const streamed = this.frozen !== null && this.frozen.names().some((name) => name.startsWith(prefix));
    if (!(this.recompute || streamed)) return run(x);
    const variables = [...this.params, ...(project.variables ?? [])]
      .filter(([name, variable]) => variable.trainable && name.includes(`.layers.${layer}.`))
      .map(([, variable]) => variable);
    const { cos, sin } = inputs.rope;
    return recomputed((input, [c, s]) => run(input, { cos: c, sin: s } as AttentionInputs['rope']), x, [cos, sin], variables, project.randomState);
  }

  private withLayerWeights<T>(prefix: string, x: tf.Tensor3D, fn: () => T): T {
    if (!this.frozen) return fn();
    const [B, T] = x.shape;
    return this.frozen.withUploaded(
      prefix,
      (uploaded) => {
        this.active = uploaded;
        try {
          return fn();
        } finally {
          this.active = null;
        }
      },
      { rawRows: takesRawRows(B * T) },
    );
  }

  /** Output head: the tied embedding [V, D] (used transposed) or lm_head [D, V]. */
  logits(hidden: tf.Tensor3D): tf.Tensor3D {
    const [B, T, D] = hidden.shape;
    return tf.reshape(this.headLogits(tf.reshape(hidden, [B * T, D]) as tf.Tensor2D), [B, T, this.config.vocabSize]);
  }

  /**
   * Logits [N, V] of final hidden states [N, D], with a gradient for the hidden states. A streamed head
   * enters a chunk of vocabulary rows at a time, forward and backward, so its float32 copy never exists whole.
   */
  headLogits(rows: tf.Tensor2D): tf.Tensor2D {
    if (!this.streamedHead()) {
      return this.capLogits(
        this.config.tieWordEmbeddings
          ? tf.matMul(rows, this.param(EMBEDDING) as tf.Tensor2D, false, true)
          : tf.matMul(rows, this.param('lm_head.weight') as tf.Tensor2D),
      );
    }
    // Decided out here: inside customGrad's forward function no tape records even in training, so
    // takesRawRows would say yes to a training step's head there.
    const rawRows = takesRawRows(rows.shape[0]);
    const project = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [hidden, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
      save([hidden]);
      const parts = this.headChunks().map(({ start, size }) => this.withHeadRows(start, size, (rows) => this.headChunkLogits(hidden, rows), { rawRows })); // [N, C] each
      return {
        value: tf.concat(parts, 1),
        gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => [headInputGradient(this, saved as tf.Tensor2D, ({ start, size }) => tf.slice(dy, [0, start], [-1, size]) as tf.Tensor2D)],
      };
    });
    return project(rows) as tf.Tensor2D;
  }

  /** Final logits [N, C] of hidden states [N, D] for a chunk of head rows [C, D] (see withHeadRows). */
  headChunkLogits(hidden: tf.Tensor2D, rows: tf.Tensor2D): tf.Tensor2D {
    return this.capLogits(linearOfRows(hidden, rows) as tf.Tensor2D);
  }

  /** Final logits from the head's products: soft-capped where the config says so (Gemma 2), else as they are. */
  capLogits<T extends tf.Tensor>(logits: T): T {
    return softcap(logits, this.config.finalLogitSoftcap);
  }

  private headName(): string {
    return this.config.tieWordEmbeddings ? EMBEDDING : 'lm_head.weight';
  }

  /** Whether the output head is streamed (frozen, compact in host memory): losses then go through its chunks. */
  streamedHead(): boolean {
    return this.frozen?.has(this.headName()) ?? false;
  }

  /**
   * Runs `use` with the head's vocabulary rows [start, start + size) as [size, D] (logits are
   * hidden @ rows^T), freed after: a streamed head's, or a slice of the resident one (outside any gradient:
   * losses that read heads this way treat them as frozen).
   */
  withHeadRows<T>(start: number, size: number, use: (rows: tf.Tensor2D) => T, options: { rawRows?: boolean } = {}): T {
    const { tensor, pinned } = this.streamedHead() ? this.frozen!.headRows(this.headName(), start, size, options) : { tensor: this.residentHeadRows(start, size), pinned: false };
    try {
      return use(tensor);
    } finally {
      if (!pinned) tensor.dispose();
    }
  }

  private residentHeadRows(start: number, size: number): tf.Tensor2D {
    return withoutGradients(() =>
      this.config.tieWordEmbeddings
        ? (tf.slice(this.param(EMBEDDING), [start, 0], [size, -1]) as tf.Tensor2D)
        : tf.tidy(() => tf.transpose(tf.slice(this.param('lm_head.weight'), [0, start], [-1, size])) as tf.Tensor2D),
    );
  }

  /** A streamed head's rows for these token ids, [n, D]: their logits are hidden . row. */
  headRows(ids: ArrayLike<number>): tf.Tensor2D {
    const table = this.frozen!.compact(this.headName());
    return tf.tensor2d(table.gatherRows(ids), [ids.length, table.rowLength]);
  }

  /** The vocabulary chunks a streamed head is used in. */
  headChunks(): { start: number; size: number }[] {
    const V = this.config.vocabSize;
    const rows = this.headChunkRows;
    const chunks = [];
    for (let start = 0; start < V; start += rows) chunks.push({ start, size: Math.min(rows, V - start) });
    return chunks;
  }

  readonly param = (name: string): tf.Tensor => {
    const p = this.params.get(name);
    if (!p) throw new Error(`model has no parameter ${name}`);
    return p;
  };

  /**
   * The plain projections: weights [in, out] (and biases) concatenated along their outputs, one product.
   * The parameters stay separate, named as in HF checkpoints; the copy costs a pass over the weights
   * per step, small next to the products it merges when there are more rows than input features.
   */
  readonly project: Projection = (prefixes, x) => {
    const biases = prefixes.map((prefix) => this.params.get(`${prefix}.bias`));
    const inFeatures = x.shape[x.rank - 1];
    if (prefixes.length > 1 && x.size / inFeatures < inFeatures && !this.active) {
      // Few rows (decoding, short prompts): a product per weight costs less than copying the weights into
      // one matrix every call, which the product then reorders again (see the wasm BatchMatMul kernel).
      return tf.concat(prefixes.map((prefix, i) => linear(x, this.param(`${prefix}.weight`) as tf.Tensor2D, biases[i] as tf.Tensor1D | undefined)), -1);
    }
    const bias = biases.some((b) => b !== undefined)
      ? concatOrSingle(biases.map((b, i) => b ?? tf.zeros([this.outFeatures(prefixes[i])])))
      : undefined;
    const streamed = this.active?.get(fusedName(prefixes.map((prefix) => `${prefix}.weight`)));
    if (!streamed) return linear(x, concatOrSingle(prefixes.map((prefix) => this.param(`${prefix}.weight`))) as tf.Tensor2D, bias as tf.Tensor1D | undefined);
    // A streamed matrix arrives in blocks of its [out, in] rows: one product each, side by side.
    const y = concatOrSingle(streamed.map((block) => linearOfRows(x, block)));
    return bias ? tf.add(y, bias) : y;
  };

  /** Output features of the linear layer at `prefix` (`model.layers.0.self_attn.q_proj`). */
  outFeatures(prefix: string): number {
    const spec = this.specs.get(`${prefix}.weight`);
    if (!spec) throw new Error(`model has no linear layer ${prefix}`);
    return spec.hfShape[0];
  }

  parameterCount(): number {
    return elementCount(this.params) + (this.frozen?.elementCount() ?? 0);
  }

  dispose(): void {
    disposeAll(this.params);
    this.frozen?.dispose();
  }
}

/**
 * A sliding window's first visible key for each query: itself and the window - 1 before it, within what
 * the layout lets it see; undefined for a model without a window.
 */
function slidingWindowKeys({ slidingWindow }: ModelConfig, base?: FirstVisibleKey): FirstVisibleKey | undefined {
  if (slidingWindow === null) return undefined;
  return (row, position) => Math.max(base?.(row, position) ?? 0, position - slidingWindow + 1);
}

/** The layout checked against B rows of `offset` cached and T new positions, as positions and key windows. */
function rowPositions(layout: BatchLayout, B: number, offset: number, T: number): RowPositions {
  if (layout.padLeft) {
    const { padLeft } = layout;
    const S = offset + T;
    if (padLeft.length !== B) throw new RangeError(`forward: layout.padLeft needs one count per batch row (${B}), got ${padLeft.length}`);
    padLeft.forEach((padded, row) => {
      if (!Number.isInteger(padded) || padded < 0 || padded >= S) {
        throw new RangeError(`forward: layout.padLeft[${row}] must be an integer in [0, ${S}) for ${S} positions, got ${padded}`);
      }
    });
    return { positionOf: (row, t) => offset + t - padLeft[row], firstKey: (row) => padLeft[row] };
  }
  const { segments } = layout;
  if (offset !== 0) throw new RangeError('forward: layout.segments (packed rows) cannot continue a cache');
  if (segments.length !== B) throw new RangeError(`forward: layout.segments needs one list per batch row (${B}), got ${segments.length}`);
  const starts = segments.map((lengths, row) => {
    const start = new Int32Array(T);
    let at = 0;
    for (const length of lengths) {
      if (!Number.isInteger(length) || length < 1 || at + length > T) {
        throw new RangeError(`forward: layout.segments[${row}] must be positive lengths adding up to at most ${T}, got [${lengths}]`);
      }
      start.fill(at, at, at + length);
      at += length;
    }
    start.fill(at, at);
    return start;
  });
  return { positionOf: (row, t) => t - starts[row][t], firstKey: (row, position) => starts[row][position] };
}

/** Tensors concatenated along their last axis; a single one as it is. */
function concatOrSingle(tensors: tf.Tensor[]): tf.Tensor {
  return tensors.length === 1 ? tensors[0] : tf.concat(tensors, -1);
}

function fromHfLayout(data: Float32Array, spec: ParameterSpec): tf.Tensor {
  const t = tf.tensor(data, spec.hfShape);
  if (!spec.transposed) return t;
  const transposed = tf.transpose(t);
  t.dispose();
  return transposed;
}

/**
 * A parameter's values in Hugging Face layout, transposed on the host: the variable itself is read, so
 * that after `cacheOnHost` its values are at hand on every backend (webgpu has no synchronous read).
 */
function toHfLayout(param: tf.Variable, spec: ParameterSpec): Float32Array {
  const values = param.dataSync() as Float32Array;
  if (!spec.transposed) return values;
  const [rows, cols] = param.shape; // [in, out] -> [out, in]
  const out = new Float32Array(values.length);
  transposeInto(values, rows, cols, out);
  return out;
}

/** Tile edge of the host transpose: 64 x 64 floats of source and destination stay in cache. */
const TILE = 64;

/** Writes the transpose of `source` ([rows, cols], row-major) into `dest` ([cols, rows]), a tile at a time. */
function transposeInto(source: Float32Array, rows: number, cols: number, dest: Float32Array): void {
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(r0 + TILE, rows);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(c0 + TILE, cols);
      for (let c = c0; c < c1; c++) {
        for (let r = r0; r < r1; r++) dest[c * rows + r] = source[r * cols + c];
      }
    }
  }
}
