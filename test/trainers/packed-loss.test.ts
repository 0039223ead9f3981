/**
 * Examples packed into one window train as if each were alone: positions restart at 0 per example and a
 * block-diagonal causal mask keeps them from attending to each other, so each keeps its own logits and
 * the packed loss is the loss of the examples side by side.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ValidationBatches } from '../../trainers/batches.ts';
import { packGreedy } from '../../trainers/packing.ts';
import { promptResponseExample } from '../../datasets/text-examples.ts';
import { initBackend } from '../../src/backend/index.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { nextTokenLoss } from '../../trainers/losses/next-token.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const tokenizer = createByteLevelTokenizer();
const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, ropeTheta: 100 });
const pairs = [['What is 2+3?', ' 5'], ['Name a colour:', ' teal, or red'], ['Hi', ' there'], ['Count: 1 2', ' 3 4 5']];
const examples = pairs.map(([prompt, response]) => promptResponseExample(prompt, response, tokenizer));

/** Log-softmax rows of the model's logits for ids [1, T] (or [B, T] with a layout), as nested arrays. */
function logprobs(model: CausalLM, ids: number[][], layout?: Parameters<CausalLM['forward']>[3]): number[][][] {
  return tf.tidy(() => tf.logSoftmax(model.forward(tf.tensor2d(ids, [ids.length, ids[0].length], 'int32'), undefined, undefined, layout)).arraySync() as number[][][]);
}

describe('packed examples', () => {
  it('get, token for token, the log-probabilities each has alone (1e-5), and would not without the mask', () => {
    const model = CausalLM.init(config, { seed: 4, std: 0.2 });
    const seqLen = examples.reduce((sum, e) => sum + e.ids.length, 0) + 3;
    const { windows } = packGreedy(examples, seqLen, tokenizer.padId ?? 0);
    expect(windows.count).toBe(1);
    expect(windows.segments).toEqual([examples.map((e) => e.ids.length)]);
    const row = [...windows.ids.subarray(0, seqLen)];
    const packed = logprobs(model, [row], { segments: windows.segments! })[0];
    const unmasked = logprobs(model, [row])[0];
    let start = 0;
    let worstUnmasked = 0;
    for (const example of examples) {
      const alone = logprobs(model, [example.ids])[0];
      for (let t = 0; t < example.ids.length; t++) {
        for (let v = 0; v < config.vocabSize; v += 7) {
          expect(Math.abs(packed[start + t][v] - alone[t][v])).toBeLessThan(1e-5);
          worstUnmasked = Math.max(worstUnmasked, Math.abs(unmasked[start + t][v] - alone[t][v]));
        }
      }
      start += example.ids.length;
    }
    expect(worstUnmasked).toBeGreaterThan(1e-2); // packing without the mask is not the same computation
    model.dispose();
  });

  it('have the loss of their unpacked batches: the mean over the same scored tokens (1e-5)', () => {
    const model = CausalLM.init(config, { seed: 5, std: 0.2 });
    const longest = Math.max(...examples.map((e) => e.ids.length));
    const packed = packGreedy(examples, 2 * longest, tokenizer.padId ?? 0).windows;
    expect(packed.count).toBeLessThan(examples.length);
    const lossOf = (windows: typeof packed) =>
      [...new ValidationBatches(windows, 8).batches()].map((batch) => tf.tidy(() => ({ loss: nextTokenLoss(model, batch).dataSync()[0], tokens: batch.tokens })));
    const [packedLoss] = lossOf(packed);
    const alone = examples.map((example) => lossOf(packGreedy([example], longest, tokenizer.padId ?? 0).windows)[0]);
    const expected = alone.reduce((sum, a) => sum + a.loss * a.tokens, 0) / alone.reduce((sum, a) => sum + a.tokens, 0);
    expect(packedLoss.tokens).toBe(alone.reduce((sum, a) => sum + a.tokens, 0));
    expect(Math.abs(packedLoss.loss - expected)).toBeLessThan(1e-5);
    model.dispose();
  });
});
