import * as tf from '@tensorflow/tfjs-core';
import type { HostTensor } from '../formats/safetensors.ts';
import { Rng } from '../util/rng.ts';
import type { ModelConfig } from './config.ts';
import type { KVCache } from './kv-cache.ts';
import { decoderBlock, rmsNorm, type Projection } from './layers.ts';
import { linear } from './matmul.ts';
import { memoryShape, parameterSpecs, type ParameterSpec } from './parameters.ts';
import { rotaryTables, rowRotaryTables } from './rope.ts';
import { disposeAll, elementCount, ownedVariable } from './variables.ts';

export interface InitOptions {
  seed: number;
  /** Standard deviation of the normal init of embeddings and linear weights (HF's initializer_range). */
  std?: number;
}

/**
 * Rows of different lengths in one batch, padded on the left: row b starts with padLeft[b] padding
 * positions that no query attends to, and its real tokens take positions 0, 1, ... as they would alone.
 * The counts cover the whole sequence, cached positions included, so they stay the same at every step
 * of a decoding.
 */
export interface BatchLayout {
  padLeft: readonly number[];
}

/**
 * A decoder-only transformer of the Llama family (Llama, Mistral, Qwen2, SmolLM, TinyLlama), shaped by its
 * config. Parameters are tf.Variables named as in Hugging Face checkpoints.
 */
export class CausalLM {
  readonly config: ModelConfig;
  readonly params: Map<string, tf.Variable>;
  private readonly specs: Map<string, ParameterSpec>;

  private constructor(config: ModelConfig, params: Map<string, tf.Variable>) {
    this.config = config;
    this.params = params;
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

  /** All parameters in Hugging Face names, shapes and layout, in checkpoint order. */
  hfTensors(): HostTensor[] {
    return [...this.specs.values()].map((spec) => ({
      name: spec.name,
      shape: spec.hfShape,
      data: toHfLayout(this.params.get(spec.name)!, spec),
    }));
  }

  /**
   * Logits [B, T, V] for token ids [B, T]; with a cache, the ids continue the cached positions. With a
   * layout, the rows are left-padded sequences of different lengths.
   */
  forward(ids: tf.Tensor2D, cache?: KVCache, project: Projection = this.project, layout?: BatchLayout): tf.Tensor3D {
    return tf.tidy(() => this.logits(this.hidden(ids, cache, project, layout)));
  }

  /** Final-norm hidden states [B, T, D]. */
  hidden(ids: tf.Tensor2D, cache?: KVCache, project: Projection = this.project, layout?: BatchLayout): tf.Tensor3D {
    const [B, T] = ids.shape;
    const offset = cache?.length ?? 0;
    if (layout) checkLayout(layout, B, offset + T);
    const queryScale = 1 / Math.sqrt(this.config.headDim);
    const rope = layout
      ? rowRotaryTables(this.config, layout.padLeft.map((padded) => offset - padded), T, queryScale)
      : rotaryTables(this.config, offset, T, queryScale);
    let x = tf.gather(this.param('model.embed_tokens.weight'), ids) as tf.Tensor3D; // [B, T, D]
    for (let layer = 0; layer < this.config.numLayers; layer++) {
      x = decoderBlock(x, layer, this.config, this.param, project, { rope, cache, padLeft: layout?.padLeft });
    }
    return rmsNorm(x, this.param('model.norm.weight'), this.config.rmsNormEps) as tf.Tensor3D;
  }

  /** The output projection as [D, V]: lm_head, or the tied embedding transposed (gradients reach it). */
  outputHead(): tf.Tensor2D {
    return this.config.tieWordEmbeddings
      ? tf.transpose(this.param('model.embed_tokens.weight') as tf.Tensor2D)
      : (this.param('lm_head.weight') as tf.Tensor2D);
  }

  /** Output head: the tied embedding [V, D] (used transposed) or lm_head [D, V]. */
  logits(hidden: tf.Tensor3D): tf.Tensor3D {
    const [B, T, D] = hidden.shape;
    const rows = tf.reshape(hidden, [B * T, D]) as tf.Tensor2D;
    const logits = this.config.tieWordEmbeddings
      ? tf.matMul(rows, this.param('model.embed_tokens.weight') as tf.Tensor2D, false, true)
      : tf.matMul(rows, this.param('lm_head.weight') as tf.Tensor2D); // [B*T, V]
    return tf.reshape(logits, [B, T, this.config.vocabSize]);
  }

  readonly param = (name: string): tf.Tensor => {
    const p = this.params.get(name);
    if (!p) throw new Error(`model has no parameter ${name}`);
    return p;
  };

  /**
   * The plain projections: weights [in, out] (and biases) concatenated along their outputs, one product.
   * The parameters stay separate, named as in HF checkpoints; the copy costs a pass over the weights
   * per step, small next to the products it merges.
   */
  readonly project: Projection = (prefixes, x) => {
    const weights = prefixes.map((prefix) => this.param(`${prefix}.weight`));
    const biases = prefixes.map((prefix) => this.params.get(`${prefix}.bias`));
    const bias = biases.some((b) => b !== undefined)
      ? concatOrSingle(biases.map((b, i) => b ?? tf.zeros([weights[i].shape[1] as number])))
      : undefined;
    return linear(x, concatOrSingle(weights) as tf.Tensor2D, bias as tf.Tensor1D | undefined);
  };

  parameterCount(): number {
    return elementCount(this.params);
  }

  dispose(): void {
    disposeAll(this.params);
  }
}

/** Each of the B rows must keep at least one real position of its S. */
function checkLayout({ padLeft }: BatchLayout, B: number, S: number): void {
  if (padLeft.length !== B) throw new RangeError(`forward: layout.padLeft needs one count per batch row (${B}), got ${padLeft.length}`);
  padLeft.forEach((padded, row) => {
    if (!Number.isInteger(padded) || padded < 0 || padded >= S) {
      throw new RangeError(`forward: layout.padLeft[${row}] must be an integer in [0, ${S}) for ${S} positions, got ${padded}`);
    }
  });
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

function toHfLayout(param: tf.Variable, spec: ParameterSpec): Float32Array {
  if (!spec.transposed) return param.dataSync() as Float32Array;
  const transposed = tf.transpose(param);
  const data = transposed.dataSync() as Float32Array;
  transposed.dispose();
  return data;
}
