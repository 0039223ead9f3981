import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { Rng } from '../../src/util/rng.ts';

interface Result {
  shape: number[];
  values: number[];
}

/** Runs `f` on a backend and reads its result back, so the same computation can run on wasm and cpu. */
async function on(backend: 'wasm' | 'cpu', f: () => tf.Tensor): Promise<Result> {
  await initBackend(backend, { threads: 1 });
  const tensor = tf.tidy(f);
  const result = { shape: tensor.shape, values: Array.from(await tensor.data()) };
  tensor.dispose();
  return result;
}

function normals(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.normal());
}

/** Segment sums over rows of `rowSize` values, accumulated in float64; ids outside [0, n) dropped. */
function referenceSegmentSum(x: number[], ids: number[], rowSize: number, numSegments: number): number[] {
  const out = new Array<number>(numSegments * rowSize).fill(0);
  ids.forEach((segment, row) => {
    if (segment < 0 || segment >= numSegments) return;
    for (let j = 0; j < rowSize; j++) out[segment * rowSize + j] += x[row * rowSize + j];
  });
  return out;
}

/** One assertion over all values: the largest absolute difference (an expect per value is slow at 1M). */
function expectClose(actual: number[], expected: number[], tolerance = 1e-4): void {
  expect(actual).toHaveLength(expected.length);
  const worst = actual.reduce((max, value, i) => Math.max(max, Math.abs(value - expected[i])), 0);
  expect(worst).toBeLessThan(tolerance);
}

beforeAll(async () => {
  await initBackend('wasm', { threads: 1 });
});

describe('UnsortedSegmentSum on wasm', () => {
  it('is registered for wasm by initBackend', () => {
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
  });

  it('matches the cpu backend for repeated, out-of-order and out-of-range ids', async () => {
    const rng = new Rng(11);
    const [rows, rowSize, numSegments] = [60, 7, 10];
    const x = normals(rng, rows * rowSize);
    const ids = Array.from({ length: rows }, () => rng.int(numSegments + 4) - 2);
    expect(ids).toEqual(expect.arrayContaining([-2, -1, 10, 11])); // dropped: outside [0, 10)
    expect(new Set(ids).size).toBeLessThan(rows); // repeated
    const f = () => tf.unsortedSegmentSum(tf.tensor2d(x, [rows, rowSize]), tf.tensor1d(ids, 'int32'), numSegments);

    const wasm = await on('wasm', f);
    const cpu = await on('cpu', f);

    expect(wasm.shape).toEqual([numSegments, rowSize]);
    expect(cpu.shape).toEqual(wasm.shape);
    expectClose(wasm.values, cpu.values);
    expectClose(wasm.values, referenceSegmentSum(x, ids, rowSize, numSegments));
  });

  it('sums whole sub-tensors of a rank-3 input, and scalars of a 1-D input', async () => {
    const rng = new Rng(12);
    const x3 = normals(rng, 12 * 2 * 3);
    const ids3 = Array.from({ length: 12 }, () => rng.int(6));
    const x1 = normals(rng, 9);
    const ids1 = [3, 0, 3, 3, 1, 0, 2, 3, 1];

    const rank3 = () => tf.unsortedSegmentSum(tf.tensor3d(x3, [12, 2, 3]), tf.tensor1d(ids3, 'int32'), 6);
    const flat = () => tf.unsortedSegmentSum(tf.tensor1d(x1), tf.tensor1d(ids1, 'int32'), 5);

    const wasmRank3 = await on('wasm', rank3);
    const wasmFlat = await on('wasm', flat);
    expect([wasmRank3.shape, wasmFlat.shape]).toEqual([[6, 2, 3], [5]]);
    expectClose(wasmRank3.values, (await on('cpu', rank3)).values);
    expectClose(wasmRank3.values, referenceSegmentSum(x3, ids3, 6, 6));
    expectClose(wasmFlat.values, (await on('cpu', flat)).values);
    expectClose(wasmFlat.values, referenceSegmentSum(x1, ids1, 1, 5));
  });

  it('keeps int32 inputs int32 and exact', async () => {
    const x = [5, -3, 7, 1, 2, 2, 9, -4];
    const ids = [1, 0, 1, 3];

    await initBackend('wasm', { threads: 1 });
    const sum = tf.tidy(() => tf.unsortedSegmentSum(tf.tensor2d(x, [4, 2], 'int32'), tf.tensor1d(ids, 'int32'), 4));

    expect(sum.dtype).toBe('int32');
    expect(Array.from(await sum.data())).toEqual(referenceSegmentSum(x, ids, 2, 4));
    sum.dispose();
  });

  it('handles an embedding-sized gradient ([4096, 256] from 2048 ids) exactly like a plain loop', async () => {
    const rng = new Rng(13);
    const [vocab, hidden, tokens] = [4096, 256, 2048];
    const x = normals(rng, tokens * hidden);
    const ids = Array.from({ length: tokens }, () => rng.int(64) * 64); // few distinct ids, many repeats

    const wasm = await on('wasm', () =>
      tf.unsortedSegmentSum(tf.tensor2d(x, [tokens, hidden]), tf.tensor1d(ids, 'int32'), vocab),
    );

    expectClose(wasm.values, referenceSegmentSum(x, ids, hidden, vocab));
  });

  it('rejects segment ids whose shape is not a prefix of the input shape', async () => {
    await initBackend('wasm', { threads: 1 });
    const x = tf.zeros([4, 3]);
    const ids = tf.tensor1d([0, 1, 2, 0, 1], 'int32');

    expect(() => tf.unsortedSegmentSum(x, ids, 3)).toThrow(/segmentIds shape \[5\] must be a prefix of x shape \[4,3\]/);
    tf.dispose([x, ids]);
  });

  it('leaves no tensors behind', async () => {
    await initBackend('wasm', { threads: 1 });
    const before = tf.memory().numTensors;

    tf.tidy(() => {
      tf.unsortedSegmentSum(tf.ones([5, 2]), tf.tensor1d([0, 1, 0, 2, 1], 'int32'), 3);
    });

    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('gradient of gather with respect to its params', () => {
  /** d/d table of sum(gather(table, ids, axis) * weights): the gradient an embedding receives. */
  function gatherGradient(table: number[], tableShape: number[], ids: number[], idsShape: number[], axis: number, weights: number[]) {
    return () => {
      const indices = tf.tensor(ids, idsShape, 'int32');
      const loss = (t: tf.Tensor) => {
        const gathered = tf.gather(t, indices, axis);
        return tf.sum(tf.mul(gathered, tf.tensor(weights, gathered.shape)));
      };
      return tf.grad(loss)(tf.tensor(table, tableShape));
    };
  }

  it('equals the cpu result for token ids [3, 11] into an embedding [37, 16]', async () => {
    const rng = new Rng(21);
    const [vocab, hidden, batch, time] = [37, 16, 3, 11];
    const ids = Array.from({ length: batch * time }, () => rng.int(vocab));
    const weights = normals(rng, batch * time * hidden);
    const f = gatherGradient(normals(rng, vocab * hidden), [vocab, hidden], ids, [batch, time], 0, weights);

    const wasm = await on('wasm', f);
    const cpu = await on('cpu', f);

    expect(wasm.shape).toEqual([vocab, hidden]);
    expectClose(wasm.values, cpu.values);
    expectClose(wasm.values, referenceSegmentSum(weights, ids, hidden, vocab));
  });

  it('equals the cpu result when gathering along an inner axis', async () => {
    const rng = new Rng(22);
    const ids = [4, 0, 4, 8, 2, 4];
    const f = gatherGradient(normals(rng, 5 * 9 * 4), [5, 9, 4], ids, [6], 1, normals(rng, 5 * 6 * 4));

    const wasm = await on('wasm', f);
    const cpu = await on('cpu', f);

    expect(wasm.shape).toEqual([5, 9, 4]);
    expectClose(wasm.values, cpu.values);
  });
});
