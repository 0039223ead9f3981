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

  const specs: ParameterSpec[] = [
    { name: 'model.embed_tokens.weight', hfShape: [vocabSize, d], transposed: false, init: 'normal' },
  ];
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    specs.push(
      vector(`${p}.input_layernorm.weight`, d, 'ones'),
      linear(`${p}.self_attn.q_proj`, qDim, d),
      linear(`${p}.self_attn.k_proj`, kvDim, d),
      linear(`${p}.self_attn.v_proj`, kvDim, d),
      linear(`${p}.self_attn.o_proj`, d, qDim, true),
    );
    if (config.qkNorm) {
      specs.push(vector(`${p}.self_attn.q_norm.weight`, headDim, 'ones'), vector(`${p}.self_attn.k_norm.weight`, headDim, 'ones'));
    }
    if (config.attentionBias) {
      specs.push(
        vector(`${p}.self_attn.q_proj.bias`, qDim, 'zeros'),
        vector(`${p}.self_attn.k_proj.bias`, kvDim, 'zeros'),
        vector(`${p}.self_attn.v_proj.bias`, kvDim, 'zeros'),
      );
    }
    specs.push(
      vector(`${p}.post_attention_layernorm.weight`, d, 'ones'),
      linear(`${p}.mlp.gate_proj`, f, d),
      linear(`${p}.mlp.up_proj`, f, d),
      linear(`${p}.mlp.down_proj`, d, f, true),
    );
  }
  specs.push(vector('model.norm.weight', d, 'ones'));
  if (!config.tieWordEmbeddings) specs.push(linear('lm_head', vocabSize, d));
  return specs;
}

/** In-memory shape of a parameter. */
export function memoryShape(spec: ParameterSpec): number[] {
  return spec.transposed ? [spec.hfShape[1], spec.hfShape[0]] : spec.hfShape;
}
