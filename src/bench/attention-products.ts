/**
 * How fast the backend runs causal attention's batched products next to a linear layer's products, on the
 * same backend in the same run. The attention products are the ones causalAttention issues, block by
 * block, in a training step (forward: scores and context; backward: the gradients of the probabilities,
 * queries, keys and values); the linear layer is [B*T, D] x [D, D] with its input and weight gradients.
 * Random values: speed does not depend on them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { BLOCK_POSITIONS, queryBlocks } from '../model/causal-attention.ts';
import type { ModelConfig } from '../model/config.ts';
import { medianBy } from './timing.ts';

export interface AttentionProductsCase {
  /** What the shape is: `benchmark model`, or a published model's name. */
  name: string;
  config: ModelConfig;
  batchSize: number;
  seqLen: number;
}

export interface AttentionProductsResult {
  name: string;
  batchSize: number;
  seqLen: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Floating-point operations of one layer's attention products in a training step. */
  attentionFlops: number;
  attentionGflops: number;
  linearGflops: number;
  /** attentionGflops / linearGflops: 1 when the batched products run at the linear layers' pace. */
  ratioToLinear: number;
}

/** One product tf.matMul(a, b, transposeA, transposeB), by its operands' shapes. */
export interface ProductShape {
  a: [number, number, number];
  b: [number, number, number];
  transposeA: boolean;
  transposeB: boolean;
}

/** Timed rounds of each kind, interleaved; the median is reported. */
const ROUNDS = 3;

/**
 * One layer's attention products in a training step, as causalAttention issues them: per query block, q k^T
 * and p v forward; dContext v^T, dScores k, dScores^T q and p^T dContext backward. N = B * kv heads; a kv
 * head's G query heads are one matrix of P * G rows.
 */
export function attentionProductShapes(config: ModelConfig, batchSize: number, seqLen: number): ProductShape[] {
  const { numHeads, numKvHeads, headDim: hd } = config;
  const [N, G] = [batchSize * numKvHeads, numHeads / numKvHeads];
  return queryBlocks(seqLen, 0, BLOCK_POSITIONS).flatMap(({ positions, keys }) => {
    const rows = positions * G;
    const product = (a: [number, number], b: [number, number], transposeA: boolean, transposeB: boolean): ProductShape => ({
      a: [N, ...a],
      b: [N, ...b],
      transposeA,
      transposeB,
    });
    return [
      product([rows, hd], [keys, hd], false, true), // scores = q k^T
      product([rows, keys], [keys, hd], false, false), // context = p v
      product([rows, hd], [keys, hd], false, true), // dProbabilities = dContext v^T
      product([rows, keys], [keys, hd], false, false), // dq = dScores k
      product([rows, keys], [rows, hd], true, false), // dk = dScores^T q
      product([rows, keys], [rows, hd], true, false), // dv = p^T dContext
    ];
  });
}

/** 2 M K N for each product. */
export function productFlops(shapes: ProductShape[]): number {
  return shapes.reduce((sum, { a, b, transposeA, transposeB }) => {
    const [batch, m, k] = transposeA ? [a[0], a[2], a[1]] : a;
    const n = transposeB ? b[1] : b[2];
    return sum + 2 * batch * m * k * n;
  }, 0);
}

export function benchAttentionProducts({ name, config, batchSize, seqLen }: AttentionProductsCase): AttentionProductsResult {
  const attention = attentionProductShapes(config, batchSize, seqLen);
  const [rows, D] = [batchSize * seqLen, config.hiddenSize];
  const linear: ProductShape[] = [
    { a: [1, rows, D], b: [1, D, D], transposeA: false, transposeB: false }, // y = x W
    { a: [1, rows, D], b: [1, D, D], transposeA: false, transposeB: true }, // dx = dy W^T
    { a: [1, rows, D], b: [1, rows, D], transposeA: true, transposeB: false }, // dW = x^T dy
  ];
  const runAttention = productRunner(attention);
  const runLinear = productRunner(linear);
  try {
    runAttention.run();
    runLinear.run();
    const rounds = Array.from({ length: ROUNDS }, () => ({ attention: runAttention.run(), linear: runLinear.run() }));
    const attentionFlops = productFlops(attention);
    const attentionGflops = attentionFlops / medianBy(rounds, (r) => r.attention).attention / 1e9;
    const linearGflops = productFlops(linear) / medianBy(rounds, (r) => r.linear).linear / 1e9;
    const { numHeads: heads, numKvHeads: kvHeads, headDim } = config;
    return { name, batchSize, seqLen, heads, kvHeads, headDim, attentionFlops, attentionGflops, linearGflops, ratioToLinear: attentionGflops / linearGflops };
  } finally {
    runAttention.dispose();
    runLinear.dispose();
  }
}

/** The products over operands made once; `run` returns the seconds one pass over all of them took. */
function productRunner(shapes: ProductShape[]): { run(): number; dispose(): void } {
  const operands = shapes.map(({ a, b }) => [tf.randomNormal(a), tf.randomNormal(b)] as const);
  return {
    run() {
      const started = performance.now();
      let last: tf.Tensor | undefined;
      shapes.forEach(({ transposeA, transposeB }, i) => {
        last?.dispose();
        last = tf.matMul(operands[i][0], operands[i][1], transposeA, transposeB);
      });
      last!.dataSync(); // a queueing backend (webgpu) has run every product of the round before the clock stops
      last!.dispose();
      return (performance.now() - started) / 1000;
    },
    dispose: () => tf.dispose(operands.flat()),
  };
}
