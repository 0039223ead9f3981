import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { loadModelDir } from '../../src/model-files/load.ts';
import { scoreTokens } from '../../src/model/score.ts';

await initBackend('wasm');

const DIR = join(import.meta.dirname, '../fixtures/hf/tiny-qwen2');
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as { input_ids: number[]; logits: number[][] };

/** log softmax of a row of the PyTorch reference logits, in float64. */
function referenceLogProbs(row: number[]): number[] {
  const max = Math.max(...row);
  const logZ = max + Math.log(row.reduce((sum, v) => sum + Math.exp(v - max), 0));
  return row.map((v) => v - logZ);
}

describe('scoreTokens', () => {
  it('gives log P(ids[i] | ids[<i]) from the reference logits of position i - 1, and null first', async () => {
    const { model } = await loadModelDir(DIR);
    const ids = expected.input_ids;
    const scores = await scoreTokens(model, ids, 3);
    expect(scores.logprobs[0]).toBeNull();
    expect(scores.topK[0]).toBeNull();
    for (let i = 1; i < ids.length; i++) {
      const reference = referenceLogProbs(expected.logits[i - 1]);
      expect(scores.logprobs[i]).toBeCloseTo(reference[ids[i]], 4);
      const best = reference.map((lp, id) => ({ id, lp })).sort((a, b) => b.lp - a.lp).slice(0, 3);
      expect(scores.topK[i]!.map((e) => e.id)).toEqual(best.map((e) => e.id));
    }
    model.dispose();
  });

  it('rejects ids outside the vocabulary and empty sequences, naming the problem', async () => {
    const { model } = await loadModelDir(DIR);
    await expect(scoreTokens(model, [1, model.config.vocabSize])).rejects.toThrow(`token id ${model.config.vocabSize} is outside the vocabulary`);
    await expect(scoreTokens(model, [])).rejects.toThrow('at least one token');
    model.dispose();
  });
});
