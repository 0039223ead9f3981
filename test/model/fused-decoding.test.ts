import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { ModelConfigInput } from '../../src/model/config.ts';
import { rmsNorm } from '../../src/model/layers.ts';
import { expectSameResults, on, randomTensor } from '../backend/kernels/compare.ts';
import { TINY_GEMMA2, tinyModel } from '../helpers/tiny-model.ts';

/**
 * On wasm, decoding runs fused kernels (src/backend/kernels/decode-attention.ts, rms-norm.ts); the cpu
 * backend has none and runs the differentiable ops. Decoding on wasm a token at a time must give what the
 * cpu backend's full forward pass gives for the whole sequence.
 */
const IDS = [
  [0, 0, 0, 5, 9, 2, 17, 3, 11, 4, 8, 1], // three positions of left padding
  [6, 14, 7, 12, 2, 19, 5, 10, 3, 15, 9, 22],
];
const PAD_LEFT = [3, 0];
const PROMPT = 5;

/** Logits of each row's real positions: the full forward on cpu, or a 5-token prefill then single tokens on wasm. */
async function logits(backend: 'wasm' | 'cpu', overrides: Partial<ModelConfigInput>): Promise<number[]> {
  const [result] = await on(backend, () => {
    const model = tinyModel(overrides);
    const T = IDS[0].length;
    const layout = { padLeft: PAD_LEFT };
    let out: tf.Tensor3D;
    if (backend === 'cpu') {
      out = model.forward(tf.tensor2d(IDS, [2, T], 'int32'), undefined, undefined, layout);
    } else {
      const cache = model.newCache();
      const chunk = (start: number, size: number) => tf.tensor2d(IDS.map((row) => row.slice(start, start + size)), [2, size], 'int32');
      const parts = [model.forward(chunk(0, PROMPT), cache, undefined, layout)];
      for (let t = PROMPT; t < T; t++) parts.push(model.forward(chunk(t, 1), cache, undefined, layout));
      out = tf.concat(parts, 1);
      cache.dispose();
    }
    const real = out.arraySync().flatMap((row, b) => row.slice(PAD_LEFT[b]).flat());
    model.dispose();
    return tf.tensor1d(real);
  });
  return result.values;
}

describe('fused decoding on wasm', () => {
  it.each([
    ['grouped-query heads, biases and q/k norms', {}],
    ['partial rotation (Phi) and one kv head', { qkNorm: false, numKvHeads: 1, rotaryDim: 2 }],
    ['Gemma 2: soft-capped scores, a sliding window, sandwich norms', TINY_GEMMA2],
  ])('gives the logits of the full forward pass on cpu: %s', async (_, overrides) => {
    const decoded = await logits('wasm', overrides);
    const whole = await logits('cpu', overrides);
    expect(decoded.length).toBe(whole.length);
    expectSameResults([{ shape: [decoded.length], values: decoded }], [{ shape: [whole.length], values: whole }], 1e-4);
  });

  it('runs a decoding step as one attention kernel and two norms per layer, in buffers allocated once or grown by doubling', async () => {
    await on('wasm', () => tf.zeros([1]));
    const model = tinyModel({ qkNorm: false });
    const cache = model.newCache();
    model.forward(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32'), cache).dispose();
    const step = () => tf.tidy(() => void model.forward(tf.tensor2d([[4]], [1, 1], 'int32'), cache));
    step(); // the first step moves the prefill into buffers with room
    const profile = await tf.profile(step);
    const names = profile.kernels.map((k) => k.name);
    const count = (name: string) => names.filter((n) => n === name).length;
    const layers = model.config.numLayers;
    expect(count('SlmDecodeAttention')).toBe(layers);
    expect(count('SlmRmsNorm')).toBe(2 * layers + 1); // block norms and the final norm
    expect(count('Concat')).toBe(2 * layers); // q/k/v and gate/up side by side: no copy of the cache
    expect(count('Softmax') + count('Transpose') + count('Reshape')).toBeLessThanOrEqual(4 * layers);
    // 16 positions fit the first buffers: a 17th grows them (two copies a layer), then none again.
    for (let position = cache.length; position < 16; position++) step();
    const grow = (await tf.profile(step)).kernels.filter((k) => k.name === 'Concat').length;
    expect(grow).toBe(2 * layers + 2 * layers);
    cache.dispose();
    // A cache told how long the generation runs allocates its buffers once, at that size: no growth after.
    const sized = model.newCache(40);
    model.forward(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32'), sized).dispose();
    const concats: number[] = [];
    for (let position = 3; position < 40; position++) {
      concats.push((await tf.profile(() => tf.tidy(() => void model.forward(tf.tensor2d([[4]], [1, 1], 'int32'), sized)))).kernels.filter((k) => k.name === 'Concat').length);
    }
    expect(concats[0]).toBe(4 * layers); // the prompt's keys and values moved into the buffers
    expect(new Set(concats.slice(1))).toEqual(new Set([2 * layers]));
    sized.dispose();
    model.dispose();
  });

  it('normalizes as the differentiable RMSNorm does, and leaves gradients to it', async () => {
    const f = () => rmsNorm(randomTensor([3, 5, 16], 1), randomTensor([16], 2), 1e-6);
    expectSameResults(await on('wasm', f), await on('cpu', f), 1e-6);
    const g = () => tf.grads((x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.mul(rmsNorm(x, w, 1e-6), randomTensor([3, 16], 3))))([randomTensor([3, 16], 4), randomTensor([16], 5)]);
    expectSameResults(await on('wasm', g), await on('cpu', g), 1e-5);
    await on('wasm', () => tf.zeros([1]));
    const taped = await tf.profile(() => tf.grads((x: tf.Tensor) => tf.sum(rmsNorm(x, tf.ones([4]), 1e-6)))([tf.ones([2, 4])]));
    expect(taped.kernels.map((k) => k.name)).not.toContain('SlmRmsNorm');
  });
});
