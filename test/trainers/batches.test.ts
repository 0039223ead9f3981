import { describe, expect, it } from 'vitest';
import { BatchIterator, ValidationBatches, type Batch } from '../../trainers/batches.ts';
import type { PackedWindows } from '../../trainers/packing.ts';

/** Window w holds ids w*100 + t and a mask with t % 3 !== 1 (position 0 is never a target). */
function syntheticWindows(count: number, seqLen: number): PackedWindows {
  const width = seqLen + 1;
  const ids = new Int32Array(count * width);
  const mask = new Uint8Array(count * width);
  for (let w = 0; w < count; w++) {
    for (let t = 0; t < width; t++) {
      ids[w * width + t] = w * 100 + t;
      mask[w * width + t] = t > 0 && t % 3 !== 1 ? 1 : 0;
    }
  }
  return { seqLen, count, padId: 0, ids, mask };
}

/** Which window each row of a batch came from. */
const rowWindows = (batch: Batch) =>
  Array.from({ length: batch.batchSize }, (_, r) => Math.floor(batch.inputs[r * batch.seqLen] / 100));

const take = (iterator: BatchIterator, n: number) => Array.from({ length: n }, () => iterator.nextBatch());

describe('BatchIterator', () => {
  it('shifts targets by one and takes the mask of the target positions', () => {
    const windows = syntheticWindows(1, 4);
    const batch = new BatchIterator(windows, 2, 1).nextBatch();
    expect([...batch.inputs]).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
    expect([...batch.targets]).toEqual([1, 2, 3, 4, 1, 2, 3, 4]);
    expect([...batch.mask]).toEqual([0, 1, 1, 0, 0, 1, 1, 0]);
    expect(batch.tokens).toBe(4);
    expect([batch.batchSize, batch.seqLen]).toEqual([2, 4]);
  });

  it('visits every window once per epoch, in a different order each epoch', () => {
    const iterator = new BatchIterator(syntheticWindows(12, 3), 4, 7);
    const epochs = [0, 1, 2].map(() => take(iterator, 3).flatMap(rowWindows));
    for (const order of epochs) expect([...order].sort((x, y) => x - y)).toEqual([...Array(12).keys()]);
    expect(epochs[1]).not.toEqual(epochs[0]);
    expect(iterator.getState()).toMatchObject({ epoch: 2, position: 12 });
  });

  it('fills a batch across the epoch boundary', () => {
    const iterator = new BatchIterator(syntheticWindows(5, 3), 3, 2);
    const rows = take(iterator, 5).flatMap(rowWindows);
    for (let e = 0; e < 3; e++) expect(rows.slice(e * 5, e * 5 + 5).sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('depends only on the seed', () => {
    const windows = syntheticWindows(20, 3);
    const order = (seed: number) => take(new BatchIterator(windows, 4, seed), 10).flatMap(rowWindows);
    expect(order(3)).toEqual(order(3));
    expect(order(3)).not.toEqual(order(4));
  });

  it('resumes from a saved state to exactly the batches an uninterrupted run yields', () => {
    const windows = syntheticWindows(10, 5);
    for (const stopAfter of [0, 1, 3, 5, 7]) {
      const uninterrupted = new BatchIterator(windows, 4, 11);
      take(uninterrupted, stopAfter);
      const saved = JSON.parse(JSON.stringify(uninterrupted.getState()));
      const expected = take(uninterrupted, 8);

      const resumed = new BatchIterator(windows, 4, 999);
      take(resumed, 2);
      resumed.setState(saved);
      expect(take(resumed, 8)).toEqual(expected);
    }
  });

  it('yields through the iterator protocol without end', () => {
    const iterator = new BatchIterator(syntheticWindows(2, 2), 1, 1);
    let n = 0;
    for (const batch of iterator) {
      expect(batch.batchSize).toBe(1);
      if (++n === 7) break;
    }
    expect(iterator.getState().epoch).toBe(3);
  });

  it('rejects an empty window set, a bad batch size and an impossible state', () => {
    expect(() => new BatchIterator(syntheticWindows(0, 2), 1, 1)).toThrow('no training windows');
    expect(() => new BatchIterator(syntheticWindows(2, 2), 0, 1)).toThrow('batchSize: expected a positive integer');
    const iterator = new BatchIterator(syntheticWindows(2, 2), 1, 1);
    expect(() => iterator.setState({ epoch: 0, position: 3, rngState: 1 })).toThrow('position in [0, 2]');
  });
});

describe('ValidationBatches', () => {
  it('serves windows in packing order, the last batch smaller, at most maxBatches', () => {
    const validation = new ValidationBatches(syntheticWindows(5, 3), 2);
    const all = [...validation.batches()];
    expect(validation.batchCount).toBe(3);
    expect(all.map(rowWindows)).toEqual([[0, 1], [2, 3], [4]]);
    expect(all[2].inputs).toHaveLength(3);
    expect(all.reduce((sum, b) => sum + b.tokens, 0)).toBe(5 * 2);
    expect([...validation.batches(2)].map(rowWindows)).toEqual([[0, 1], [2, 3]]);
    expect([...validation.batches()]).toEqual(all);
  });
});
