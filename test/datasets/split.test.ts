import { describe, expect, it } from 'vitest';
import { hashString, splitByHash } from '../../datasets/split.ts';
import { Rng } from '../../src/util/rng.ts';

const items = Array.from({ length: 200 }, (_, i) => `record ${i}`);
const key = (s: string) => s;

describe('splitByHash', () => {
  it('holds out exactly round(fraction * n), disjoint from train, together all items in input order', () => {
    const { train, validation } = splitByHash(items, key, 0.1, 5);
    expect(validation).toHaveLength(20);
    expect(train).toHaveLength(180);
    expect(train.filter((x) => validation.includes(x))).toEqual([]);
    expect([...train, ...validation].sort()).toEqual([...items].sort());
    expect(validation).toEqual(items.filter((x) => validation.includes(x)));
  });

  it('is deterministic for a seed, changes with the seed, and ignores input order', () => {
    const first = splitByHash(items, key, 0.1, 5).validation;
    expect(splitByHash(items, key, 0.1, 5).validation).toEqual(first);
    expect(splitByHash(items, key, 0.1, 6).validation).not.toEqual(first);
    const shuffled = new Rng(1).shuffle([...items]);
    expect(splitByHash(shuffled, key, 0.1, 5).validation.sort()).toEqual([...first].sort());
  });

  it('keeps a record on its side when other records are added', () => {
    const small = splitByHash(items, key, 0.1, 5).validation;
    const more = [...items, ...Array.from({ length: 200 }, (_, i) => `extra ${i}`)];
    const large = new Set(splitByHash(more, key, 0.1, 5).validation);
    // Doubling the data keeps the cut-off hash about where it was, so nearly every early choice stays.
    expect(small.filter((x) => large.has(x)).length).toBeGreaterThanOrEqual(18);
  });

  it('puts at least one record on each side and validates the fraction', () => {
    expect(splitByHash(['a', 'b'], key, 0.01, 1).validation).toHaveLength(1);
    expect(splitByHash(['a', 'b'], key, 0.99, 1).train).toHaveLength(1);
    expect(splitByHash(['a'], key, 0, 1)).toEqual({ train: ['a'], validation: [] });
    expect(() => splitByHash(items, key, 1, 1)).toThrow('validation.fraction: expected a number in [0, 1), got 1');
    expect(() => splitByHash(['a'], key, 0.5, 1)).toThrow('needs at least 2 records');
  });
});

describe('hashString', () => {
  it('spreads keys evenly over 32 bits', () => {
    const hashes = Array.from({ length: 4000 }, (_, i) => hashString(`k${i}`, 3));
    const buckets = new Array(8).fill(0);
    for (const h of hashes) buckets[h >>> 29]++;
    for (const count of buckets) expect(Math.abs(count - 500)).toBeLessThan(100);
    expect(new Set(hashes).size).toBe(4000);
  });

  it('hashes a text under different seeds as unrelated values, not as another text under seed 0', () => {
    // Raw XOR of the seed into FNV's basis made "0..." under seed 1 hash as "1..." under seed 0.
    const keys = ['0', '1', '2', '3'].map((sample) => `${sample}\u0000Question: 2+2`);
    const underSeed = (seed: number) => new Set(keys.map((key) => hashString(key, seed)));
    const seed0 = underSeed(0);
    for (const seed of [1, 2, 3]) expect([...underSeed(seed)].filter((h) => seed0.has(h))).toEqual([]);
    // Seed 0 hashes as it always has (FNV-1a, then fmix32), so existing splits and caches keep their values.
    expect(hashString('a', 0)).toBe(0x1a80b1b3); // the value before the seed was spread
  });
});
