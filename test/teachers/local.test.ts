import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { LocalTeacher } from '../../src/teachers/local.ts';

await initBackend('wasm');

const tokenizer = createByteLevelTokenizer();

function teacher(template: string | null = null, scoreTopK = 5): LocalTeacher {
  const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, eosTokenId: tokenizer.eosId });
  return new LocalTeacher('tiny', CausalLM.init(config, { seed: 5, std: 0.3 }), tokenizer, template, { scoreTopK });
}

/** The model's softmax at every position, computed here from one forward pass, in float64. */
function referenceLogprobs(model: CausalLM, ids: number[]): number[][] {
  const logits = tf.tidy(() => model.forward(tf.tensor2d(ids, [1, ids.length], 'int32')).arraySync()[0]);
  return logits.map((row) => {
    const max = Math.max(...row);
    const logZ = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    return row.map((v) => v - logZ);
  });
}

describe('the local teacher', () => {
  it('scores text with the model softmax at every position: the token and its top-k', async () => {
    const t = teacher();
    const [tokens] = await t.score(['The cat sat.']);
    const ids = tokenizer.encode('The cat sat.', { addSpecialTokens: true });
    const reference = referenceLogprobs(t.model, ids);
    expect(tokens.map((tok) => tok.id)).toEqual(ids);
    expect(tokens[0].logprob).toBeNaN();
    for (let i = 1; i < ids.length; i++) {
      const row = reference[i - 1];
      expect(tokens[i].logprob).toBeCloseTo(row[ids[i]], 4);
      const best = row.map((lp, id) => ({ id, lp })).sort((a, b) => b.lp - a.lp).slice(0, 5);
      expect(tokens[i].top.map((e) => e.id)).toEqual(best.map((e) => e.id));
      tokens[i].top.forEach((e, j) => expect(e.logprob).toBeCloseTo(best[j].lp, 4));
    }
  });

  it('generates with the distribution it reports: each token logprob equals a re-score of the sample', async () => {
    const t = teacher();
    const [sample] = await t.generate([{ prompt: 'Once', maxTokens: 12, temperature: 1, topLogprobs: 3, seed: 7 }]);
    expect(sample.tokens).toHaveLength(12);
    expect(sample.finishReason).toBe('length');
    const prompt = tokenizer.encode('Once', { addSpecialTokens: true });
    const ids = [...prompt, ...sample.tokens.map((tok) => tok.id!)];
    const reference = referenceLogprobs(t.model, ids);
    sample.tokens.forEach((tok, i) => {
      const row = reference[prompt.length - 1 + i];
      expect(tok.logprob).toBeCloseTo(row[tok.id!], 4);
      expect(tok.top).toHaveLength(3);
      expect(tok.top[0].logprob).toBeCloseTo(Math.max(...row), 4);
    });
    const again = await t.generate([{ prompt: 'Once', maxTokens: 12, temperature: 1, topLogprobs: 3, seed: 7 }]);
    expect(again[0].text).toBe(sample.text);
  });

  it('renders messages through the chat template, and refuses messages without one', async () => {
    const chatml = "{% for m in messages %}{{ '<|bos|>' + m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}";
    const withTemplate = teacher(chatml);
    const [sample] = await withTemplate.generate([{ messages: [{ role: 'user', content: 'hi' }], maxTokens: 3, temperature: 0, topLogprobs: 0 }]);
    // The template renders "<|bos|>user: hi\nassistant:", the ids of this prompt with BOS added:
    const [plain] = await teacher().generate([{ prompt: 'user: hi\nassistant:', maxTokens: 3, temperature: 0, topLogprobs: 0 }]);
    expect(sample.tokens.map((tok) => tok.id)).toEqual(plain.tokens.map((tok) => tok.id));
    await expect(teacher().generate([{ messages: [{ role: 'user', content: 'hi' }], maxTokens: 3, temperature: 0, topLogprobs: 0 }])).rejects.toThrow(
      'has no chat template',
    );
  });
});
