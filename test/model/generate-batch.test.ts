import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import type { CausalLM } from '../../src/model/causal-lm.ts';
import { generateBatch, generateTokens, type GenerateOptions } from '../../src/model/generate.ts';
import { KVCache } from '../../src/model/kv-cache.ts';
import type { Projection } from '../../src/model/layers.ts';
import { LoraAdapter } from '../../src/model/lora.ts';
import { resolveLoraConfig } from '../../src/model/lora-config.ts';
import { argmax } from '../../src/model/sampling.ts';
import { Rng } from '../../src/util/rng.ts';
import { tinyModel } from '../helpers/tiny-model.ts';

await initBackend('wasm');

const greedy = { temperature: 0, topK: 0, topP: 1 };

function randomPrompts(lengths: number[], vocab: number, seed: number): number[][] {
  const rng = new Rng(seed);
  return lengths.map((length) => Array.from({ length }, () => rng.int(vocab)));
}

/** The reference: each prompt generated alone; row b with seed + b, as generateBatch promises. */
async function oneAtATime(model: CausalLM, prompts: number[][], options: GenerateOptions): Promise<number[][]> {
  const results: number[][] = [];
  for (const [row, prompt] of prompts.entries()) {
    const ids: number[] = [];
    for await (const id of generateTokens(model, prompt, { ...options, seed: options.seed + row })) ids.push(id);
    results.push(ids);
  }
  return results;
}

/** An adapter on every projection with a random B, so it changes what the model generates. */
function randomAdapter(model: CausalLM): LoraAdapter {
  const adapter = LoraAdapter.init(model, resolveLoraConfig({ rank: 2, alpha: 4, targets: 'all-linear' }), 5);
  const rng = new Rng(6);
  for (const [name, p] of adapter.params) {
    if (name.includes('lora_B')) p.assign(tf.tensor(Array.from({ length: p.size }, () => rng.normal() * 0.3), p.shape));
  }
  return adapter;
}

const llama3Scaling = { ropeType: 'llama3' as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8 };

describe('generateBatch', () => {
  // The 130-token prompt puts the shorter rows' padding across two attention blocks of 128 positions.
  const lengths = [1, 3, 7, 12, 5, 130];

  it.each([
    ['GQA, biases, q/k norms', {}],
    ['multi-head, no norms, tied embeddings', { numKvHeads: 4, qkNorm: false, attentionBias: false, tieWordEmbeddings: true }],
    ['one kv head, llama3 rope scaling', { numKvHeads: 1, ropeScaling: llama3Scaling }],
  ])('greedy: each row gets exactly what generateTokens gives it alone (%s)', async (_, overrides) => {
    const model = tinyModel(overrides);
    const prompts = randomPrompts(lengths, model.config.vocabSize, 1);
    const options = { ...greedy, maxTokens: 9, seed: 0, stopIds: [] };
    const batched = await generateBatch(model, prompts, { ...options, padId: 0 });
    expect(batched).toEqual(await oneAtATime(model, prompts, options));
    expect(batched.map((ids) => ids.length)).toEqual(lengths.map(() => 9));
    model.dispose();
  });

  it('greedy with nobody reading the logits takes the argmax on the backend: the ids of the logits read back', async () => {
    const model = tinyModel();
    const prompts = randomPrompts(lengths, model.config.vocabSize, 2);
    const options = { ...greedy, maxTokens: 9, seed: 0, padId: 0, stopIds: [] };
    const argmaxOfRead: number[][] = prompts.map(() => []);
    const readBack = await generateBatch(model, prompts, { ...options, onToken: (row, _, logits) => argmaxOfRead[row].push(argmax(logits)) });
    expect(argmaxOfRead).toEqual(readBack);
    const kernels = async (f: () => Promise<void>) => (await tf.profile(f)).kernels.map((k) => k.name);
    const onBackend = await kernels(async () => expect(await generateBatch(model, prompts, options)).toEqual(readBack));
    expect(onBackend).toContain('ArgMax');
    expect(await kernels(async () => void (await generateBatch(model, prompts, { ...options, onToken: () => {} })))).not.toContain('ArgMax');
    const alone: number[] = [];
    for await (const id of generateTokens(model, prompts[2], options)) alone.push(id);
    expect(alone).toEqual(readBack[2]);
    model.dispose();
  });

  it('greedy with a LoRA projection matches generateTokens with the same projection, and differs from the base', async () => {
    const model = tinyModel();
    const adapter = randomAdapter(model);
    const project: Projection = adapter.wrap(model);
    const prompts = randomPrompts([2, 9, 4], model.config.vocabSize, 2);
    const options = { ...greedy, maxTokens: 8, seed: 0, stopIds: [] };
    const batched = await generateBatch(model, prompts, { ...options, project, padId: 3 });
    expect(batched).toEqual(await oneAtATime(model, prompts, { ...options, project }));
    expect(batched).not.toEqual(await generateBatch(model, prompts, { ...options, padId: 3 }));
    adapter.dispose();
    model.dispose();
  });

  it('sampling: row b draws what generateTokens draws with seed + b, whatever the pad id', async () => {
    const model = tinyModel();
    const prompts = randomPrompts([4, 1, 6], model.config.vocabSize, 3);
    const options = { temperature: 1.2, topK: 12, topP: 0.95, maxTokens: 10, seed: 40, stopIds: [] };
    const batched = await generateBatch(model, prompts, { ...options, padId: 0 });
    expect(batched).toEqual(await oneAtATime(model, prompts, options));
    expect(await generateBatch(model, prompts, { ...options, padId: 22 })).toEqual(batched);
    model.dispose();
  });

  it('a stop id ends its row (returned last) while the others run to maxTokens', async () => {
    const model = tinyModel();
    const prompts = randomPrompts([5, 2, 8, 3], model.config.vocabSize, 4);
    const options = { ...greedy, maxTokens: 10, seed: 0, padId: 1 };
    const free = await generateBatch(model, prompts, { ...options, stopIds: [] });
    // An id that some rows produce and others never do.
    const stop = free.flat().find((id) => free.some((ids) => !ids.includes(id)))!;
    expect(stop).toBeDefined();

    const stopped = await generateBatch(model, prompts, { ...options, stopIds: [stop] });
    stopped.forEach((ids, row) => {
      const at = free[row].indexOf(stop);
      expect(ids).toEqual(at < 0 ? free[row] : free[row].slice(0, at + 1));
    });
    expect(stopped.some((ids) => ids.length < 10)).toBe(true);
    expect(stopped.some((ids) => ids.length === 10)).toBe(true);
    expect(stopped).toEqual(await oneAtATime(model, prompts, { ...greedy, maxTokens: 10, seed: 0, stopIds: [stop] }));
    model.dispose();
  });

  it('the model EOS stops a row by default; shouldStop ends a row after the token it accepts', async () => {
    const model = tinyModel();
    const prompts = randomPrompts([3, 6, 2], model.config.vocabSize, 5);
    const options = { ...greedy, maxTokens: 7, seed: 0, padId: 0 };
    const free = await generateBatch(model, prompts, { ...options, stopIds: [] });

    const eosModel = tinyModel({ eosTokenId: free[1][2] });
    const withEos = await generateBatch(eosModel, prompts, options);
    expect(withEos[1]).toEqual(free[1].slice(0, free[1].indexOf(free[1][2]) + 1));
    eosModel.dispose();

    const seen: [number, number[]][] = [];
    const shouldStop = (row: number, ids: number[]) => {
      seen.push([row, ids]);
      return row === 2 && ids.length === 3;
    };
    const cut = await generateBatch(model, prompts, { ...options, stopIds: [], shouldStop });
    expect(cut).toEqual([free[0], free[1], free[2].slice(0, 3)]);
    expect(seen.filter(([row]) => row === 2).map(([, ids]) => ids)).toEqual([1, 2, 3].map((n) => free[2].slice(0, n)));
    model.dispose();
  });

  it('stops each row at max_position_embeddings as generateTokens does, prompts at or past it included', async () => {
    const model = tinyModel({ maxPositionEmbeddings: 16 });
    const prompts = randomPrompts([16, 17, 14, 3], model.config.vocabSize, 6);
    const options = { ...greedy, maxTokens: 6, seed: 0, stopIds: [] };
    const batched = await generateBatch(model, prompts, { ...options, padId: 0 });
    expect(batched.map((ids) => ids.length)).toEqual([1, 0, 3, 6]);
    expect(batched).toEqual(await oneAtATime(model, prompts, options));
    model.dispose();
  });

  it('leaves no tensors behind, rows ending early or not', async () => {
    const model = tinyModel();
    const prompts = randomPrompts([4, 9, 1], model.config.vocabSize, 7);
    const before = tf.memory().numTensors;
    await generateBatch(model, prompts, { ...greedy, maxTokens: 6, seed: 0, padId: 0, stopIds: [] });
    await generateBatch(model, prompts, { ...greedy, maxTokens: 6, seed: 0, padId: 0, stopIds: [], shouldStop: (row, ids) => ids.length === row + 1 });
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('rejects an empty prompt and a pad id outside the vocabulary', async () => {
    const model = tinyModel();
    const options = { ...greedy, maxTokens: 2, seed: 0 };
    await expect(generateBatch(model, [[1], []], { ...options, padId: 0 })).rejects.toThrow(/prompt 1/);
    await expect(generateBatch(model, [[1]], { ...options, padId: 23 })).rejects.toThrow(/padId/);
    expect(await generateBatch(model, [], { ...options, padId: 0 })).toEqual([]);
    model.dispose();
  });
});

describe('forward with a left-padded layout', () => {
  function maxDifference(a: number[][], b: number[][]): number {
    return Math.max(...a.flatMap((row, t) => row.map((x, v) => Math.abs(x - b[t][v]))));
  }

  it('gives each row, at its real positions, the logits of the row alone, prefilled and then decoded with a cache', () => {
    const model = tinyModel({ ropeScaling: llama3Scaling });
    const prompts = randomPrompts([1, 3, 7, 12], model.config.vocabSize, 8);
    const continuations = randomPrompts([2, 2, 2, 2], model.config.vocabSize, 9);
    const width = 12;
    const padLeft = prompts.map((p) => width - p.length);
    const padded = prompts.map((p, b) => [...new Array<number>(padLeft[b]).fill(5), ...p]);
    const layout = { padLeft };

    const whole = tf.tidy(() => model.forward(tf.tensor2d(padded, [4, width], 'int32'), undefined, undefined, layout).arraySync());
    const cache = new KVCache(model.config.numLayers);
    const prefill = tf.tidy(() => model.forward(tf.tensor2d(padded, [4, width], 'int32'), cache, undefined, layout).arraySync());
    const steps = [0, 1].map((s) =>
      tf.tidy(() => model.forward(tf.tensor2d(continuations.map((c) => [c[s]]), [4, 1], 'int32'), cache, undefined, layout).arraySync()),
    );
    cache.dispose();

    prompts.forEach((prompt, b) => {
      const alone = tf.tidy(() => {
        const ids = [...prompt, ...continuations[b]];
        return model.forward(tf.tensor2d([ids], [1, ids.length], 'int32')).arraySync()[0];
      });
      const real = (rows: number[][]) => rows.slice(padLeft[b]);
      expect(maxDifference(real(whole[b]), alone.slice(0, prompt.length))).toBeLessThan(1e-4);
      expect(maxDifference(real(prefill[b]), alone.slice(0, prompt.length))).toBeLessThan(1e-4);
      steps.forEach((step, s) => expect(maxDifference(step[b], [alone[prompt.length + s]])).toBeLessThan(1e-4));
    });
    model.dispose();
  });

  it('rejects a layout that does not fit the batch', () => {
    const model = tinyModel();
    const ids = tf.tensor2d([[1, 2], [3, 4]], [2, 2], 'int32');
    expect(() => model.forward(ids, undefined, undefined, { padLeft: [0] })).toThrow(/one count per batch row/);
    expect(() => model.forward(ids, undefined, undefined, { padLeft: [0, 2] })).toThrow(/padLeft\[1\]/);
    ids.dispose();
    model.dispose();
  });
});
