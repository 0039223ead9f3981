import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { broadcastIndex, PackedWeights, type PackedOperand } from '../../../src/backend/kernels/batch-mat-mul.ts';
import { expectSameResults, on, randomTensor } from './compare.ts';

/** a @ b on wasm and on cpu, for shapes that take each of the kernel's paths. */
async function expectMatchesCpu(
  aShape: number[],
  bShape: number[],
  transposeA: boolean,
  transposeB: boolean,
  tolerance?: number,
): Promise<void> {
  const f = () => tf.matMul(randomTensor(aShape, 1), randomTensor(bShape, 2), transposeA, transposeB);
  expectSameResults(await on('wasm', f), await on('cpu', f), tolerance);
}

describe('BatchMatMul on wasm', () => {
  it.each([
    ['2-D', [7, 5], [5, 3], false, false],
    ['2-D, a transposed', [5, 7], [5, 3], true, false],
    ['2-D, b transposed', [7, 5], [3, 5], false, true],
    ['2-D, both transposed', [5, 7], [3, 5], true, true],
    // A weight gradient x^T dy with dy the larger operand runs as (dy^T x)^T: the 2-D case takes that plan;
    // batches with a right matrix per product run in our own kernel (batch-product.test.ts).
    ['2-D, a transposed, b much larger', [64, 4], [64, 40], true, false],
    ['batched, a transposed, b much larger', [3, 64, 4], [3, 64, 40], true, false],
    ['a shared and transposed, b batched and much larger', [64, 4], [3, 64, 40], true, false],
    ['batched', [4, 6, 5], [4, 5, 3], false, false],
    ['batched, a transposed', [4, 5, 6], [4, 5, 3], true, false],
    ['batched, b transposed', [4, 6, 5], [4, 3, 5], false, true],
    ['batched, both transposed', [4, 5, 6], [4, 3, 5], true, true],
    ['rank 4', [2, 3, 6, 5], [2, 3, 5, 4], false, false],
    ['b shared by the batch', [4, 6, 5], [5, 3], false, false],
    ['b shared by the batch, a transposed', [4, 5, 6], [1, 5, 3], true, false],
    ['a shared by the batch', [6, 5], [4, 5, 3], false, false],
  ])('matches the cpu backend: %s', async (_, aShape, bShape, transposeA, transposeB) => {
    await expectMatchesCpu(aShape as number[], bShape as number[], transposeA as boolean, transposeB as boolean);
  });

  it('broadcasts batch axes of size 1 in both operands', async () => {
    // The cpu backend gets this case wrong (tfjs 4.22), so the reference repeats the operands explicitly.
    const [a, b] = [() => randomTensor([2, 1, 6, 5], 1), () => randomTensor([1, 3, 4, 5], 2)];
    const broadcast = await on('wasm', () => tf.matMul(a(), b(), false, true));
    const repeated = await on('cpu', () => tf.matMul(tf.tile(a(), [1, 3, 1, 1]), tf.tile(b(), [2, 1, 1, 1]), false, true));
    expectSameResults(broadcast, repeated);
  });

  it('matches the cpu backend for attention-sized products', async () => {
    await expectMatchesCpu([4, 512, 32], [4, 256, 32], false, true, 1e-4); // scores = q k^T
    await expectMatchesCpu([4, 512, 256], [4, 512, 32], true, false, 1e-4); // dV = p^T dO
  });

  it('gives zeros for an empty inner dimension and an empty result for an empty outer one', async () => {
    const [zeros] = await on('wasm', () => tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 2])));
    expect(zeros).toEqual({ shape: [3, 2], values: [0, 0, 0, 0, 0, 0] });
    const [empty] = await on('wasm', () => tf.matMul(tf.zeros([2, 0, 4]), tf.zeros([2, 4, 3])));
    expect(empty).toEqual({ shape: [2, 0, 3], values: [] });
  });

  it('matches the cpu backend for gradients of batched, transposed products', async () => {
    const f = () => {
      const [a, b] = [randomTensor([3, 4, 6], 3), randomTensor([3, 5, 6], 4)];
      const weights = randomTensor([3, 4, 5], 5);
      return tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, false, true), weights)))([a, b]);
    };
    expectSameResults(await on('wasm', f), await on('cpu', f));
  });

  it('rejects operands whose inner dimensions differ', async () => {
    await on('wasm', () => tf.zeros([1]));
    expect(() => tf.matMul(tf.zeros([2, 3, 4]), tf.zeros([2, 5, 6]))).toThrow(/inner/);
  });
});

describe('broadcastIndex', () => {
  it('maps an output batch index to the index into a broadcast operand', () => {
    // out batch [2, 3]; operand [1, 3] repeats along the first axis; operand [2, 1] along the second.
    expect([0, 1, 2, 3, 4, 5].map((i) => broadcastIndex(i, [2, 3], [1, 3]))).toEqual([0, 1, 2, 0, 1, 2]);
    expect([0, 1, 2, 3, 4, 5].map((i) => broadcastIndex(i, [2, 3], [2, 1]))).toEqual([0, 0, 0, 1, 1, 1]);
    expect([0, 1, 2, 3, 4, 5].map((i) => broadcastIndex(i, [2, 3], [3]))).toEqual([0, 1, 2, 0, 1, 2]);
    expect([0, 5].map((i) => broadcastIndex(i, [2, 3], []))).toEqual([0, 0]);
  });
});

describe('packings kept for right matrices used again', () => {
  it('gives the cpu backend\'s products when one weight meets many single rows, and after it is disposed and replaced', async () => {
    const f = () => {
      const outputs: tf.Tensor[] = [];
      for (const seed of [3, 4]) {
        const weight = randomTensor([48, 40], seed);
        // One row at a time, as decoding runs: from the second product on, the packing is kept.
        for (let row = 0; row < 4; row++) outputs.push(tf.matMul(randomTensor([1, 48], 10 * seed + row), weight));
        outputs.push(tf.matMul(randomTensor([5, 48], seed), weight));
        // Used transposed, as a tied head: from the second product on, through a kept row-major copy.
        for (let row = 0; row < 4; row++) outputs.push(tf.matMul(randomTensor([1, 40], 20 * seed + row), weight, false, true));
        outputs.push(tf.matMul(randomTensor([40, 3], seed), weight, true, true));
        weight.dispose(); // the next weight may take its memory: no stale packing or copy may be read
      }
      return outputs;
    };
    expectSameResults(await on('wasm', f), await on('cpu', f));
  });

  it('packs a matrix for keeps from its second use, within the budget, and frees the budget when it is disposed', () => {
    const packed = new PackedWeights(2 * 10 * 10 * 4, { copyRowMajor: () => ({ dataId: {} }), free: () => {} });
    const matrix = (rows = 10): PackedOperand => ({ info: { dataId: {} }, batchShape: [], rows, cols: 10, transposed: false });
    const [a, b, c] = [matrix(), matrix(), matrix()];
    expect(packed.packingIsFree(a)).toBe(false); // first use: packing is charged
    expect(packed.packingIsFree(a)).toBe(true); // used again: kept from now on
    expect(packed.packingIsFree(b)).toBe(false);
    expect(packed.packingIsFree(b)).toBe(true);
    expect(packed.packingIsFree(c)).toBe(false);
    expect(packed.packingIsFree(c)).toBe(false); // the budget holds two
    packed.disposed(a.info.dataId);
    expect(packed.packingIsFree(c)).toBe(true);
    // A matrix the backend packed in a direct product costs nothing more, whatever the budget.
    const big = matrix(1000);
    packed.noteDirect(big);
    expect(packed.packingIsFree(big)).toBe(true);
    // Transposed or batched operands are copies with new ids: never kept.
    expect(packed.packingIsFree({ ...a, transposed: true })).toBe(false);
    expect(packed.packingIsFree({ ...a, batchShape: [2] })).toBe(false);
  });

  it('keeps a row-major copy of a matrix used transposed again, within the budget, and frees it with the matrix', () => {
    const made: object[] = [];
    const freed: object[] = [];
    const copier = {
      copyRowMajor: () => {
        made.push({ dataId: {} });
        return made[made.length - 1] as { dataId: object };
      },
      free: (copy: { dataId: object }) => freed.push(copy),
    };
    const packed = new PackedWeights(10 * 10 * 4, copier);
    const transposed = (): PackedOperand => ({ info: { dataId: {} }, batchShape: [], rows: 10, cols: 10, transposed: true });
    const [a, b] = [transposed(), transposed()];
    expect(packed.rowMajorCopy(a)).toBe(a); // first use: transposed as before
    const copy = packed.rowMajorCopy(a);
    expect(copy).toEqual({ ...a, info: made[0], transposed: false });
    expect(packed.rowMajorCopy(a).info).toBe(made[0]); // the same copy from then on
    packed.rowMajorCopy(b);
    expect(packed.rowMajorCopy(b)).toBe(b); // the budget holds one copy
    packed.disposed(a.info.dataId);
    expect(freed).toEqual([made[0]]);
    expect(packed.rowMajorCopy(b).transposed).toBe(false);
    // Batched operands and untransposed ones are left as they are.
    const batched = { ...transposed(), batchShape: [2] };
    packed.rowMajorCopy(batched);
    expect(packed.rowMajorCopy(batched)).toBe(batched);
  });
});
