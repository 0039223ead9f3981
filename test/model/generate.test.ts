import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { generateTokens } from '../../src/model/generate.ts';
import { argmax, filteredDistribution, sampleToken } from '../../src/model/sampling.ts';
import { Rng } from '../../src/util/rng.ts';
import { tinyModel } from '../helpers/tiny-model.ts';

await initBackend('wasm');

async function collect(tokens: AsyncIterable<number>): Promise<number[]> {
  const out: number[] = [];
  for await (const t of tokens) out.push(t);
  return out;
}

const sampling = { temperature: 0, topK: 0, topP: 1 };

describe('generateTokens', () => {
  it('greedy decoding with the cache picks the argmax of a full forward pass at every step', async () => {
    const model = tinyModel();
    const prompt = [3, 1, 4, 1, 5];
    const generated = await collect(generateTokens(model, prompt, { ...sampling, maxTokens: 8, seed: 0, stopIds: [] }));
    const sequence = [...prompt];
    for (let i = 0; i < 8; i++) {
      const logits = tf.tidy(() => model.forward(tf.tensor2d(sequence, [1, sequence.length], 'int32')).arraySync()[0]);
      sequence.push(argmax(Float32Array.from(logits[sequence.length - 1])));
    }
    expect(generated).toEqual(sequence.slice(prompt.length));
    model.dispose();
  });

  it('stops after a stop id, and is reproducible for a seed when sampling', async () => {
    const model = tinyModel();
    const options = { temperature: 1.5, topK: 10, topP: 0.95, maxTokens: 12, seed: 42, stopIds: [] };
    const a = await collect(generateTokens(model, [1, 2], options));
    const b = await collect(generateTokens(model, [1, 2], options));
    const c = await collect(generateTokens(model, [1, 2], { ...options, seed: 43 }));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const stopped = await collect(generateTokens(model, [1, 2], { ...options, stopIds: [a[3]] }));
    expect(stopped).toEqual(a.slice(0, a.indexOf(a[3]) + 1));
    model.dispose();
  });
});

describe('sampling filters', () => {
  const logits = Float32Array.from([2, 1, 0, -1, 3]);

  it('applies temperature, then top-k, then top-p, and renormalizes', () => {
    const softmax = (xs: number[]) => xs.map((x) => Math.exp(x) / xs.reduce((s, y) => s + Math.exp(y), 0));
    const all = filteredDistribution(logits, { temperature: 1, topK: 0, topP: 1 });
    expect(all.map((e) => e.id)).toEqual([4, 0, 1, 2, 3]);
    softmax([3, 2, 1, 0, -1]).forEach((p, i) => expect(all[i].p).toBeCloseTo(p, 6));

    const top2 = filteredDistribution(logits, { temperature: 0.5, topK: 2, topP: 1 });
    softmax([6, 4]).forEach((p, i) => expect(top2[i].p).toBeCloseTo(p, 6));

    // p(4) ~ 0.636, p(0) ~ 0.234: top-p 0.8 keeps both (0.636 < 0.8), drops the rest.
    const nucleus = filteredDistribution(logits, { temperature: 1, topK: 0, topP: 0.8 });
    expect(nucleus.map((e) => e.id)).toEqual([4, 0]);
    expect(nucleus[0].p + nucleus[1].p).toBeCloseTo(1, 6);
  });

  it('draws ids with the filtered probabilities', () => {
    const rng = new Rng(9);
    const counts = new Map<number, number>();
    for (let i = 0; i < 20_000; i++) {
      const id = sampleToken(logits, { temperature: 1, topK: 2, topP: 1 }, rng);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([0, 4]);
    expect(counts.get(4)! / 20_000).toBeCloseTo(Math.E / (Math.E + 1), 1);
  });
});
