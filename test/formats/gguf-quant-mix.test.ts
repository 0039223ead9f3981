/**
 * The per-tensor types of the K-quant mixes, for the published shapes, as llama.cpp's llama_tensor_get_type
 * picks them (worked out by hand from src/llama-quant.cpp for these shapes).
 */
import { describe, expect, it } from 'vitest';
import { shapeConfig } from '../../src/bench/model-shapes.ts';
import { storageTypes, ggufExportType } from '../../src/formats/gguf-quant-mix.ts';
import { ggufTensorName } from '../../src/model-files/gguf-tensors.ts';
import { parameterSpecs } from '../../src/model/parameters.ts';
import type { ModelConfig } from '../../src/model/config.ts';

function tensorsOf(config: ModelConfig) {
  return parameterSpecs(config).map((spec) => ({ name: ggufTensorName(spec.name, config)!, shape: spec.hfShape }));
}

/** use_more_bits(i, 24): the first three layers, the last three, and 5, 8, ..., 20 between. */
const QWEN_MORE_BITS = [0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23];

describe('K-quant mixes on Qwen2.5-0.5B (rows of 896: not whole super-blocks)', () => {
  const config = shapeConfig('qwen2.5-0.5b');
  const tensors = tensorsOf(config);

  it.each([
    ['Q4_K_M', 'Q5_0', 'Q4_K'],
    ['Q5_K_M', 'Q5_1', 'Q5_K'],
  ] as const)('%s: 896-column matrices fall back to %s, ffn_down (4864 columns) is %s or Q6_K, attn_v Q8_0 where it gets more bits', (type, fallback, base) => {
    const types = storageTypes(type, tensors, config.numLayers);
    expect(types.get('token_embd.weight')).toBe('Q8_0'); // the tied head: Q6_K wanted, 896 columns
    expect(types.get('blk.0.attn_q.weight')).toBe(fallback);
    expect(types.get('blk.0.ffn_up.weight')).toBe(fallback);
    expect(types.get('blk.0.attn_q.bias')).toBe('F32');
    for (let layer = 0; layer < 24; layer++) {
      const more = QWEN_MORE_BITS.includes(layer);
      expect(types.get(`blk.${layer}.ffn_down.weight`), `layer ${layer}`).toBe(more ? 'Q6_K' : base);
      expect(types.get(`blk.${layer}.attn_v.weight`), `layer ${layer}`).toBe(more ? 'Q8_0' : fallback);
    }
  });

  it('Q6_K: Q8_0 wherever rows are not whole super-blocks', () => {
    const types = storageTypes('Q6_K', tensors, config.numLayers);
    expect(types.get('blk.3.attn_v.weight')).toBe('Q8_0');
    expect(types.get('blk.3.ffn_down.weight')).toBe('Q6_K');
  });
});

describe('K-quant mixes on Llama-3.2-1B (rows of 2048 and 8192)', () => {
  it('Q4_K_M: Q4_K, the tied head Q6_K, attn_v and ffn_down Q6_K in layers 0, 1, 4, 7, 10, 13, 14, 15', () => {
    const config = shapeConfig('llama3.2-1b');
    const types = storageTypes('Q4_K_M', tensorsOf(config), config.numLayers);
    expect(types.get('token_embd.weight')).toBe('Q6_K');
    expect(types.get('blk.5.attn_k.weight')).toBe('Q4_K');
    const more = [0, 1, 4, 7, 10, 13, 14, 15];
    for (let layer = 0; layer < 16; layer++) {
      expect(types.get(`blk.${layer}.attn_v.weight`), `layer ${layer}`).toBe(more.includes(layer) ? 'Q6_K' : 'Q4_K');
    }
  });

  it('names the types as the CLI and recipes write them', () => {
    expect(['q4_k_m', 'Q5_K_M', 'q6_k', 'q8_0', 'q4_k'].map(ggufExportType)).toEqual(['Q4_K_M', 'Q5_K_M', 'Q6_K', 'Q8_0', undefined]);
  });
});
