import type { ModelConfig } from './config.ts';

/** The projections LoRA can adapt, by their short names (PEFT's `target_modules`). */
export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export interface LoraConfig {
  rank: number;
  alpha: number;
  dropout: number;
  targets: LoraTarget[];
  /** Scale alpha / sqrt(rank) instead of alpha / rank (rank-stabilized LoRA). */
  rslora: boolean;
}

export interface LoraConfigInput {
  rank: number;
  alpha: number;
  dropout?: number;
  /** Short names (`q`, `q_proj`) or `all-linear`. */
  targets?: readonly string[] | 'all-linear';
  rslora?: boolean;
}

/** Checks plain values and fills defaults; each error names the argument. */
export function resolveLoraConfig(input: LoraConfigInput): LoraConfig {
  const { rank, alpha, dropout = 0, rslora = false } = input;
  if (!Number.isInteger(rank) || rank <= 0) throw new RangeError(`lora: rank must be a positive integer, got ${rank}`);
  if (!(alpha > 0)) throw new RangeError(`lora: alpha must be > 0, got ${alpha}`);
  if (!(dropout >= 0 && dropout < 1)) throw new RangeError(`lora: dropout must be in [0, 1), got ${dropout}`);
  return { rank, alpha, dropout, rslora, targets: resolveTargets(input.targets ?? ['q_proj', 'k_proj', 'v_proj', 'o_proj']) };
}

function resolveTargets(targets: readonly string[] | 'all-linear'): LoraTarget[] {
  if (targets === 'all-linear') return [...LORA_TARGETS];
  if (targets.length === 0) throw new RangeError('lora: targets must name at least one projection');
  return targets.map((name) => {
    const full = (name.endsWith('_proj') ? name : `${name}_proj`) as LoraTarget;
    if (!LORA_TARGETS.includes(full)) {
      throw new RangeError(`lora: unknown target "${name}"; expected some of ${LORA_TARGETS.join(', ')} or all-linear`);
    }
    return full;
  });
}

export function loraScale(config: LoraConfig): number {
  return config.rslora ? config.alpha / Math.sqrt(config.rank) : config.alpha / config.rank;
}

/** One adapted projection: its HF module path and its input/output widths. */
export interface LoraModule {
  /** e.g. `model.layers.3.self_attn.q_proj` */
  path: string;
  inFeatures: number;
  outFeatures: number;
}

export function loraModules(model: ModelConfig, lora: LoraConfig): LoraModule[] {
  const { hiddenSize: d, intermediateSize: f, numHeads, numKvHeads, headDim } = model;
  const shapes: Record<LoraTarget, [string, number, number]> = {
    q_proj: ['self_attn', d, numHeads * headDim],
    k_proj: ['self_attn', d, numKvHeads * headDim],
    v_proj: ['self_attn', d, numKvHeads * headDim],
    o_proj: ['self_attn', numHeads * headDim, d],
    gate_proj: ['mlp', d, f],
    up_proj: ['mlp', d, f],
    down_proj: ['mlp', f, d],
  };
  const modules: LoraModule[] = [];
  for (let layer = 0; layer < model.numLayers; layer++) {
    for (const target of lora.targets) {
      const [block, inFeatures, outFeatures] = shapes[target];
      modules.push({ path: `model.layers.${layer}.${block}.${target}`, inFeatures, outFeatures });
    }
  }
  return modules;
}
