import type { ModelConfig } from './config.ts';

/**
 * Every weight of a Llama-family model, named as in Hugging Face checkpoints. Linear weights are [out, in]
 * in those files but held [in, out] in memory, so the forward pass multiplies without transposes (see
 * matmul.ts); `transposed` marks them.
 */
export interface ParameterSpec {
  name: string;
  /** Shape in Hugging Face files. */
  hfShape: number[];
  transposed: boolean;
  init: 'normal' | 'residual-normal' | 'ones' | 'zeros';
}

export function parameterSpecs(config: ModelConfig): ParameterSpec[] {
  const { hiddenSize: d, intermediateSize: f, numHeads, numKvHeads, headDim, vocabSize } = config;
  const qDim = numHeads * headDim;
  const kvDim = numKvHeads * headDim;
  const linear = (name: string, out: number, inp: number, residual = false): ParameterSpec => ({
    name: `${name}.weight`,
    hfShape: [out, inp],
    transposed: true,
    init: residual ? 'residual-normal' : 'normal',
  });
  const vector = (name: string, size: number, init: 'ones' | 'zeros'): ParameterSpec => ({
    name,
    hfShape: [size],
    transposed: false,
    init,
  });
  // A norm starts as the identity: weight 1, or 0 where the norm multiplies by (1 + weight) (Gemma).
  const norm = (name: string, size = d) => vector(name, size, config.normWeightOffset === 1 ? 'zeros' : 'ones');

  const specs: ParameterSpec[] = [
    { name: 'model.embed_tokens.weight', hfShape: [vocabSize, d], transposed: false, init: 'normal' },
  ];
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    specs.push(
      norm(`${p}.input_layernorm.weight`),
      linear(`${p}.self_attn.q_proj`, qDim, d),
      linear(`${p}.self_attn.k_proj`, kvDim, d),
      linear(`${p}.self_attn.v_proj`, kvDim, d),
      linear(`${p}.self_attn.o_proj`, d, qDim, true),
    );
    if (config.qkNorm) {
      specs.push(norm(`${p}.self_attn.q_norm.weight`, headDim), norm(`${p}.self_attn.k_norm.weight`, headDim));
    }
    if (config.attentionBias) {
      specs.push(
        vector(`${p}.self_attn.q_proj.bias`, qDim, 'zeros'),
        vector(`${p}.self_attn.k_proj.bias`, kvDim, 'zeros'),
        vector(`${p}.self_attn.v_proj.bias`, kvDim, 'zeros'),
      );
    }
    specs.push(norm(`${p}.post_attention_layernorm.weight`));
    if (config.sandwichNorms) specs.push(norm(`${p}.pre_feedforward_layernorm.weight`), norm(`${p}.post_feedforward_layernorm.weight`));
    specs.push(
      linear(`${p}.mlp.gate_proj`, f, d),
      linear(`${p}.mlp.up_proj`, f, d),
      linear(`${p}.mlp.down_proj`, d, f, true),
    );
  }
  specs.push(norm('model.norm.weight'));
  if (!config.tieWordEmbeddings) specs.push(linear('lm_head', vocabSize, d));
  return specs;
}

/** In-memory shape of a parameter. */
export function memoryShape(spec: ParameterSpec): number[] {
  return spec.transposed ? [spec.hfShape[1], spec.hfShape[0]] : spec.hfShape;
}
