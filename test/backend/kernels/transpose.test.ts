import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { reduceTranspose, transposeValues } from '../../../src/backend/kernels/transpose.ts';
import { expectSameResults, on, randomTensor } from './compare.ts';

describe('Transpose on wasm', () => {
  it.each([
    ['a matrix', [37, 19], [1, 0]],
    ['heads to the front ([B, T, H, hd] -> [B, H, T, hd])', [2, 5, 3, 4], [0, 2, 1, 3]],
    ['keys for a product ([B, T, H, hd] -> [B, H, hd, T])', [2, 5, 3, 4], [0, 2, 3, 1]],
    ['a batch of matrices', [3, 17, 21], [0, 2, 1]],
    ['a full reversal', [3, 4, 5], [2, 1, 0]],
    ['rank 5 with size-1 axes', [2, 1, 3, 1, 4], [4, 3, 0, 2, 1]],
    ['rows shorter than a block copy', [6, 2, 3], [1, 0, 2]],
    ['the identity', [4, 5], [0, 1]],
  ])('matches the cpu backend: %s', async (_, shape, perm) => {
    const f = () => tf.transpose(randomTensor(shape as number[], 1), perm as number[]);
    expectSameResults(await on('wasm', f), await on('cpu', f), 0);
  });

  it('keeps int32 values exact, and its gradient matches the cpu backend', async () => {
    const ints = () => tf.transpose(tf.tensor3d([1, -2, 3, 4, 5, 6, 7, 8], [2, 2, 2], 'int32'), [2, 0, 1]);
    const [wasm] = await on('wasm', ints);
    expect(wasm.values).toEqual((await on('cpu', ints))[0].values);
    const loss = (x: tf.Tensor) => tf.sum(tf.mul(tf.transpose(x, [1, 2, 0]), randomTensor([4, 5, 3], 2)));
    const grad = () => tf.grad(loss)(randomTensor([3, 4, 5], 3));
    expectSameResults(await on('wasm', grad), await on('cpu', grad), 0);
  });
});

describe('reduceTranspose', () => {
  it('drops size-1 axes and merges axes that move together', () => {
    expect(reduceTranspose([8, 256, 4, 32], [0, 2, 3, 1])).toEqual({ shape: [8, 256, 128], perm: [0, 2, 1] });
    expect(reduceTranspose([8, 256, 4, 2, 32], [0, 2, 3, 1, 4])).toEqual({ shape: [8, 256, 8, 32], perm: [0, 2, 1, 3] });
    expect(reduceTranspose([1, 5, 1, 7], [3, 2, 1, 0])).toEqual({ shape: [5, 7], perm: [1, 0] });
    expect(reduceTranspose([2, 3, 4], [0, 1, 2])).toEqual({ shape: [24], perm: [0] });
  });
});

describe('transposeValues', () => {
  it('equals an index-by-index reference for every permutation of a rank-4 array', () => {
    const shape = [2, 3, 4, 5];
    const from = Float32Array.from({ length: 120 }, (_, i) => i);
    for (const perm of permutations([0, 1, 2, 3])) {
      const heap = new Float32Array(250); // input at 3, output at 130
      heap.set(from, 3);
      transposeValues(heap, 3, 130, shape, perm);
      expect(Array.from(heap.subarray(130, 250)), `perm [${perm}]`).toEqual(referenceTranspose(from, shape, perm));
    }
  });
});

function permutations(items: number[]): number[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

function referenceTranspose(from: Float32Array, shape: number[], perm: number[]): number[] {
  const outShape = perm.map((axis) => shape[axis]);
  const out: number[] = [];
  const index = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < from.length; i++) {
    let rest = i;
    for (let axis = outShape.length - 1; axis >= 0; axis--) {
      index[perm[axis]] = rest % outShape[axis];
      rest = Math.floor(rest / outShape[axis]);
    }
    out.push(from[index.reduce((flat, coordinate, axis) => flat * shape[axis] + coordinate, 0)]);
  }
  return out;
}
