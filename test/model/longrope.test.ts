/**
 * Phi-3.5/Phi-4-mini's rotary embeddings: longrope (short factors while the sequence fits the original
 * context, long ones beyond, cos/sin scaled by the attention factor) and partial rotary (Phi-4-mini turns
 * 3/4 of each head). Checked against the float64 reference forward on both sides of the original context.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { modelConfigFromHf } from '../../src/model-files/hf-config.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { scoreTokens } from '../../src/model/score.ts';
import { Rng } from '../../src/util/rng.ts';
import { referenceLogprobs } from '../helpers/reference-forward.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

/** A small Phi-3.5-style config.json: head_dim 8, 3/4 of it rotating, original context 8 of 32. */
function phiConfig(partial: number) {
  const rng = new Rng(5);
  const factors = () => Array.from({ length: (8 * partial) / 2 }, () => 1 + rng.next() * 6);
  return modelConfigFromHf(
    {
      model_type: 'phi3', vocab_size: 48, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4,
      max_position_embeddings: 32, original_max_position_embeddings: 8, partial_rotary_factor: partial, rope_theta: 10000,
      rope_scaling: { type: 'longrope', short_factor: factors(), long_factor: factors() },
    },
    'phi/config.json',
  );
}

describe('longrope and partial rotary', () => {
  it('reads them as transformers computes them', () => {
    const config = phiConfig(0.75);
    expect(config.rotaryDim).toBe(6);
    expect(config.longRope!.attentionFactor).toBeCloseTo(Math.sqrt(1 + Math.log(4) / Math.log(8)), 12);
  });

  it.each([
    ['short factors (6 tokens of an 8-token original context)', 6, 0.75],
    ['long factors (12 tokens)', 12, 0.75],
    ['full rotary, long factors', 12, 1],
  ])('%s: scores as the float64 reference (5e-5 nats)', async (_, T, partial) => {
    const model = CausalLM.init(phiConfig(partial), { seed: 9, std: 0.4 });
    const ids = Array.from({ length: T }, (_, i) => (i * 7 + 3) % 48);
    const tensors = new Map(model.hfTensors().map((t) => [t.name, t.data]));
    const expected = await referenceLogprobs(model.config, async (name) => tensors.get(name)!, ids);
    const scores = (await scoreTokens(model, ids, 0)).logprobs.slice(1) as number[];
    scores.forEach((logprob, i) => expect(Math.abs(logprob - expected[i]), `position ${i + 1}`).toBeLessThan(5e-5));
    model.dispose();
  });
});
