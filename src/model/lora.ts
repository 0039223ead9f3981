import * as tf from '@tensorflow/tfjs-core';
import { readScalar } from '../backend/host-read.ts';
import type { HostTensor } from '../formats/safetensors.ts';
import { Rng } from '../util/rng.ts';
import type { CausalLM } from './causal-lm.ts';
import type { Projection } from './layers.ts';
import { loraModules, loraScale, type LoraConfig, type LoraModule } from './lora-config.ts';
import { linear } from './matmul.ts';
import { disposeAll, elementCount, ownedVariable } from './variables.ts';

/** PEFT's tensor names: `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r]. */
export function peftName(module: string, matrix: 'A' | 'B'): string {
  return `base_model.model.${module}.lora_${matrix}.weight`;
}

/**
 * Low-rank adapters on a frozen model: each adapted projection W x becomes W x + scale * B A x. Parameters
 * are named as in PEFT and held transposed ([in, r] and [r, out]) so the products need no transposes.
 */
export class LoraAdapter {
  readonly config: LoraConfig;
  readonly scale: number;
  /** Trainable variables by PEFT name. */
  readonly params = new Map<string, tf.Variable>();
  private readonly modules: Map<string, LoraModule>;
  private readonly dropoutRng: Rng;
  /** Dropout applies only while training. */
  training = false;

  private constructor(config: LoraConfig, modules: LoraModule[], seed: number) {
    this.config = config;
    this.scale = loraScale(config);
    this.modules = new Map(modules.map((m) => [m.path, m]));
    this.dropoutRng = new Rng(seed);
  }

  /**
   * A from PEFT's init, kaiming_uniform(a = sqrt(5)): uniform in +-1/sqrt(in); B zero, so the adapted model
   * starts equal to the base.
   */
  static init(model: CausalLM, config: LoraConfig, seed: number): LoraAdapter {
    const adapter = new LoraAdapter(config, loraModules(model.config, config), seed);
    const rng = new Rng(seed ^ 0x5eed);
    for (const m of adapter.modules.values()) {
      const bound = 1 / Math.sqrt(m.inFeatures);
      const a = Float32Array.from({ length: m.inFeatures * config.rank }, () => (2 * rng.next() - 1) * bound);
      adapter.params.set(peftName(m.path, 'A'), ownedVariable(tf.tensor2d(a, [m.inFeatures, config.rank])));
      adapter.params.set(peftName(m.path, 'B'), ownedVariable(tf.zeros([config.rank, m.outFeatures])));
    }
    return adapter;
  }

  /** Rebuilds an adapter from tensors in PEFT layout (an adapter_model.safetensors). */
  static fromPeftTensors(model: CausalLM, config: LoraConfig, tensors: Map<string, HostTensor>, seed = 0): LoraAdapter {
    const adapter = new LoraAdapter(config, loraModules(model.config, config), seed);
    for (const m of adapter.modules.values()) {
      for (const [matrix, shape] of [['A', [config.rank, m.inFeatures]], ['B', [m.outFeatures, config.rank]]] as const) {
        const name = peftName(m.path, matrix);
        const t = tensors.get(name);
        if (!t) throw new Error(`adapter: missing tensor ${name} (shape [${shape}])`);
        if (t.shape.join() !== shape.join()) throw new Error(`adapter: ${name} has shape [${t.shape}], expected [${shape}]`);
        adapter.params.set(name, ownedVariable(tf.tidy(() => tf.transpose(tf.tensor2d(t.data, shape as [number, number])))));
      }
    }
    return adapter;
  }

  /** The adapter's tensors in PEFT names and layout (read asynchronously, as every backend can). */
  async peftTensors(): Promise<HostTensor[]> {
    const tensors: HostTensor[] = [];
    for (const [name, v] of this.params) {
      const t = tf.transpose(v);
      tensors.push({ name, shape: t.shape, data: (await t.data()) as Float32Array });
      t.dispose();
    }
    return tensors;
  }

  /** Wraps the model's projections: the base output plus each adapted projection's low-rank update. */
  wrap(model: CausalLM, base: Projection = model.project): Projection {
    const projection: Projection = (prefixes, x) => {
      const y = base(prefixes, x);
      if (!prefixes.some((p) => this.modules.has(p))) return y;
      const input = this.training && this.config.dropout > 0 ? tf.dropout(x, this.config.dropout, undefined, this.dropoutRng.int(2 ** 31)) : x;
      const updates = prefixes.map((prefix) =>
        this.modules.has(prefix)
          ? this.update(prefix, input)
          : tf.zeros([...x.shape.slice(0, -1), model.outFeatures(prefix)]),
      );
      return tf.add(y, updates.length === 1 ? updates[0] : tf.concat(updates, -1));
    };
    projection.variables = this.params;
    projection.randomState = { get: () => this.dropoutRng.getState(), set: (state) => this.dropoutRng.setState(state) };
    return projection;
  }

  /** scale * (x A) B for one module; x [..., in] -> [..., out]. */
  private update(module: string, x: tf.Tensor): tf.Tensor {
    const a = this.params.get(peftName(module, 'A')) as tf.Variable<tf.Rank.R2>; // [in, r]
    const b = this.params.get(peftName(module, 'B')) as tf.Variable<tf.Rank.R2>; // [r, out]
    return tf.mul(linear(linear(x, a), b), this.scale);
  }

  /**
   * The model's tensors in Hugging Face layout with the adapter merged in, one at a time: a streamed base
   * is never float32 as a whole. Throws before yielding a tensor that would hold non-finite values.
   */
  *mergedHfTensors(model: CausalLM): Generator<HostTensor> {
    for (const tensor of model.eachHfTensor()) {
      const module = tensor.name.endsWith('.weight') ? tensor.name.slice(0, -'.weight'.length) : '';
      if (this.modules.has(module)) {
        const delta = tf.tidy(() => tf.transpose(this.delta(module, 1)));
        const values = delta.dataSync() as Float32Array; // [out, in]
        delta.dispose();
        for (let i = 0; i < values.length; i++) tensor.data[i] += values[i];
        if (!tensor.data.every(Number.isFinite)) throw new Error(`adapter: merging into ${module} gives non-finite weights`);
      }
      yield tensor;
    }
  }

  /** sign * scale * A B for one module, [in, out]: what merging adds to its weight. */
  private delta(module: string, sign: 1 | -1): tf.Tensor2D {
    return tf.mul(tf.matMul(this.params.get(peftName(module, 'A'))!, this.params.get(peftName(module, 'B'))!), sign * this.scale);
  }

  /** W += scale * A B for every adapted module (W held [in, out]); refuses non-finite results. */
  merge(model: CausalLM): Promise<void> {
    return this.applyDelta(model, 1);
  }

  /** The exact inverse of merge. */
  unmerge(model: CausalLM): Promise<void> {
    return this.applyDelta(model, -1);
  }

  /** Checks each result asynchronously, as every backend can read (webgpu only so). */
  private async applyDelta(model: CausalLM, sign: 1 | -1): Promise<void> {
    const merged = new Map<string, tf.Tensor>();
    try {
      for (const module of this.modules.keys()) {
        const weight = model.params.get(`${module}.weight`)!;
        const next = tf.tidy(() => tf.add(weight, this.delta(module, sign)));
        merged.set(module, next);
        if (!(await readScalar(tf.tidy(() => tf.all(tf.isFinite(next)))))) throw new Error(`adapter: merging into ${module} gives non-finite weights; nothing was changed`);
      }
      for (const [module, next] of merged) model.params.get(`${module}.weight`)!.assign(next);
    } finally {
      for (const t of merged.values()) t.dispose();
    }
  }

  get dropoutState(): number {
    return this.dropoutRng.getState();
  }

  set dropoutState(state: number) {
    this.dropoutRng.setState(state);
  }

  parameterCount(): number {
    return elementCount(this.params);
  }

  dispose(): void {
    disposeAll(this.params);
  }
}
