/**
 * Sliding-window attention (Mistral, Phi-3, Qwen2's use_sliding_window from max_window_layers): token i sees
 * token j when 0 <= i - j < window. Checked against the float64 reference forward, whole and decoded one
 * token at a time through the KV cache, and through config.json both ways.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { hfConfigJson, modelConfigFromHf } from '../../src/model-files/hf-config.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig, type LayerAttention, type ModelConfig } from '../../src/model/config.ts';
import { scoreTokens } from '../../src/model/score.ts';
import { referenceLogprobs } from '../helpers/reference-forward.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const ids = [3, 17, 5, 29, 11, 2, 40, 8, 33, 21, 6, 14];

function windowed(slidingWindow: number, fullLayers = 0): ModelConfig {
  const layerTypes = Array.from({ length: 3 }, (_, layer): LayerAttention => (layer < fullLayers ? 'full' : 'sliding'));
  return resolveModelConfig({ vocabSize: 48, hiddenSize: 16, intermediateSize: 32, numLayers: 3, numHeads: 4, numKvHeads: 2, attentionBias: true, slidingWindow, layerTypes, maxPositionEmbeddings: 64 });
}

async function reference(model: CausalLM): Promise<number[]> {
  const tensors = new Map(model.hfTensors().map((t) => [t.name, t.data]));
  return referenceLogprobs(model.config, async (name) => tensors.get(name)!, ids);
}

describe('sliding-window attention', () => {
  it.each([
    ['every layer (Mistral, Phi-3)', 4, 0],
    ['from layer 1 on (Qwen2 max_window_layers)', 3, 1],
  ])('%s: scores as the float64 reference (5e-5 nats), and differently from full attention', async (_, window, from) => {
    const model = CausalLM.init(windowed(window, from), { seed: 7, std: 0.4 });
    const expected = await reference(model);
    const scores = (await scoreTokens(model, ids, 0)).logprobs.slice(1) as number[];
    scores.forEach((logprob, i) => expect(Math.abs(logprob - expected[i]), `position ${i + 1}`).toBeLessThan(5e-5));
    const full = CausalLM.fromHfTensors(resolveModelConfig({ ...model.config, slidingWindow: null, layerTypes: undefined }), async (name) => model.hfTensors().find((t) => t.name === name));
    const unwindowed = (await scoreTokens(await full, ids, 0)).logprobs.slice(1) as number[];
    expect(Math.max(...unwindowed.map((logprob, i) => Math.abs(logprob - scores[i])))).toBeGreaterThan(1e-3);
    model.dispose();
    (await full).dispose();
  });

  it.each([
    ['one token at a time', [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]],
    ['a 5-token prompt, then one at a time', [5, 1, 1, 1, 1, 1, 1, 1]],
  ])('decodes %s through a cache that keeps no more than the window, to the same logits', async (_, chunks) => {
    const model = CausalLM.init(windowed(4, 1), { seed: 8, std: 0.4 });
    const whole = (await model.forward(tf.tensor2d(ids, [1, ids.length], 'int32')).array())[0];
    const cache = model.newCache();
    let start = 0;
    for (const size of chunks) {
      const chunk = ids.slice(start, start + size);
      const rows = (await model.forward(tf.tensor2d(chunk, [1, size], 'int32'), cache).array())[0];
      rows.forEach((row, i) => expect(Math.max(...row.map((v, j) => Math.abs(v - whole[start + i][j]))), `position ${start + i}`).toBeLessThan(1e-4));
      start += size;
      // Layer 0 attends to everything and keeps it; layers 1 and 2 keep at most window - 1 + the chunk.
      expect(cache.length - cache.dropped(0)).toBe(start);
      for (const layer of [1, 2]) expect(cache.length - cache.dropped(layer)).toBeLessThanOrEqual(3 + size);
    }
    expect(cache.length).toBe(ids.length);
    cache.dispose();
    model.dispose();
  });

  it("reads and writes the window as each family's config.json does", () => {
    const base = { vocab_size: 48, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 3, num_attention_heads: 4, max_position_embeddings: 64 };
    expect(modelConfigFromHf({ ...base, model_type: 'mistral', sliding_window: 8 }, 'c.json')).toMatchObject({ slidingWindow: 8, layerTypes: ['sliding', 'sliding', 'sliding'] });
    expect(modelConfigFromHf({ ...base, model_type: 'mistral', sliding_window: 4096 }, 'c.json').slidingWindow).toBeNull(); // as long as the context
    expect(modelConfigFromHf({ ...base, model_type: 'qwen2', sliding_window: 8, use_sliding_window: false }, 'c.json').slidingWindow).toBeNull();
    const qwen = modelConfigFromHf({ ...base, model_type: 'qwen2', sliding_window: 8, use_sliding_window: true, max_window_layers: 2 }, 'c.json');
    expect(qwen).toMatchObject({ slidingWindow: 8, layerTypes: ['full', 'full', 'sliding'] });
    expect(hfConfigJson(qwen)).toMatchObject({ use_sliding_window: true, sliding_window: 8, max_window_layers: 2 });
    expect(modelConfigFromHf(hfConfigJson(qwen), 'c.json')).toEqual(qwen);
    expect(() => modelConfigFromHf({ ...base, model_type: 'mistral', sliding_window: -2 }, 'c.json')).toThrow(/sliding_window must be a positive integer/);
  });
});
