import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { causalAttention } from '../../src/model/causal-attention.ts';
import { Rng } from '../../src/util/rng.ts';

function randomTensor(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed);
  return tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);
}

/**
 * The textbook form: one masked softmax over all keys for each query row, rows ordered (position, head),
 * position t seeing keys [0, offset + t]. Plain ops, so autodiff gives its gradient.
 */
function reference(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, offset: number): tf.Tensor3D {
  const [, rows] = q.shape;
  const S = k.shape[1];
  const G = rows / (S - offset);
  const mask = new Float32Array(rows * S);
  for (let r = 0; r < rows; r++) mask.fill(-1e9, r * S + offset + Math.floor(r / G) + 1, (r + 1) * S);
  const scores = tf.add(tf.matMul(q, k, false, true), tf.tensor2d(mask, [rows, S]));
  return tf.matMul(tf.softmax(scores), v);
}

async function maxDifference(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const difference = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))));
  const [value] = await difference.data();
  difference.dispose();
  return value;
}

/** Shared by the cpu, wasm and webgpu test files. */
export function causalAttentionSuite(): void {
  describe('causalAttention', () => {
    // T = 7 positions in blocks of 3 (3, 3, 1), G = 2 heads per kv head, N = 3 kv heads x batch.
    const [N, T, G, hd] = [3, 7, 2, 4];
    const dy = randomTensor([N, T * G, hd], 4);

    it.each([
      ['without a cache, in blocks', 0, 3],
      ['after 5 cached positions, in blocks', 5, 3],
      ['in one block', 0, 128],
    ])('equals one masked softmax over all keys, with its gradients: %s', async (_, offset, block) => {
      const S = offset + T;
      const q = randomTensor([N, T * G, hd], 1) as tf.Tensor3D;
      const [k, v] = [randomTensor([N, S, hd], 2), randomTensor([N, S, hd], 3)] as tf.Tensor3D[];
      const blocked = (a: tf.Tensor3D, b: tf.Tensor3D, c: tf.Tensor3D, o: number) => causalAttention(a, b, c, o, block);
      const loss = (f: typeof reference) => (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(f(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, offset), dy));

      expect(await maxDifference(blocked(q, k, v, offset), reference(q, k, v, offset))).toBeLessThan(1e-5);
      const actual = tf.grads(loss(blocked))([q, k, v]);
      const expected = tf.grads(loss(reference))([q, k, v]);
      for (const [i, g] of actual.entries()) expect(await maxDifference(g, expected[i]), `gradient ${'qkv'[i]}`).toBeLessThan(1e-5);
    });
  });
}
