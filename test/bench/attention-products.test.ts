import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { attentionProductShapes, benchAttentionProducts, productFlops } from '../../src/bench/attention-products.ts';
import { causalAttention } from '../../src/model/causal-attention.ts';
import { resolveModelConfig } from '../../src/model/config.ts';

await initBackend('wasm');

/** GQA 4/2, head dim 8; 200 positions make two query blocks (128 + 72). */
const CONFIG = resolveModelConfig({ vocabSize: 64, hiddenSize: 32, intermediateSize: 64, numLayers: 1, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 256 });
const [BATCH, SEQ_LEN] = [2, 200];

describe('attention products bench', () => {
  it('times the products causalAttention runs in a forward and backward pass, shape for shape', async () => {
    const { numHeads: H, numKvHeads: KVH, headDim: hd } = CONFIG;
    const [N, G] = [BATCH * KVH, H / KVH];
    const [q, k, v] = [[N, SEQ_LEN * G, hd], [N, SEQ_LEN, hd], [N, SEQ_LEN, hd]].map((shape) => tf.randomNormal<tf.Rank.R3>(shape as [number, number, number]));
    const profile = await tf.profile(() => {
      const grads = tf.grads((a, b, c) => tf.sum(causalAttention(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, 0)))([q, k, v]);
      tf.dispose(grads);
    });
    const key = (a: number[], b: number[]) => JSON.stringify([a, b]);
    const issued = profile.kernels.filter((kernel) => kernel.name === 'BatchMatMul').map((kernel) => key(kernel.inputShapes[0]!, kernel.inputShapes[1]!));
    const timed = attentionProductShapes(CONFIG, BATCH, SEQ_LEN).map(({ a, b }) => key(a, b));
    expect(timed.sort()).toEqual(issued.sort());
    tf.dispose([q, k, v]);
  });

  it('counts 2 M K N operations a product: six products of each block, per query row and visible key', () => {
    const { numHeads: H, numKvHeads: KVH, headDim: hd } = CONFIG;
    const N = BATCH * KVH;
    const G = H / KVH;
    // Block 1: 128 positions see up to 128 keys; block 2: 72 positions see up to 200.
    const rowKeyPairs = 128 * G * 128 + 72 * G * 200;
    expect(productFlops(attentionProductShapes(CONFIG, BATCH, SEQ_LEN))).toBe(6 * 2 * N * rowKeyPairs * hd);
  });

  it('reports the attention and linear rates it measured, and their ratio', () => {
    const result = benchAttentionProducts({ name: 'tiny', config: CONFIG, batchSize: BATCH, seqLen: SEQ_LEN });
    expect(result.attentionFlops).toBe(productFlops(attentionProductShapes(CONFIG, BATCH, SEQ_LEN)));
    expect(result.attentionGflops).toBeGreaterThan(0);
    expect(result.linearGflops).toBeGreaterThan(0);
    expect(result.ratioToLinear).toBeCloseTo(result.attentionGflops / result.linearGflops, 12);
    expect(tf.memory().numTensors).toBe(0);
  });
});
