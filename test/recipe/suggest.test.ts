import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { closestMatch, editDistance } from '../../src/recipe/suggest.ts';

/** Plain Levenshtein by recursion with memo: the independent reference. */
function levenshtein(a: string, b: string): number {
  const memo = new Map<string, number>();
  const d = (i: number, j: number): number => {
    if (i === 0) return j;
    if (j === 0) return i;
    const key = `${i},${j}`;
    if (!memo.has(key)) {
      memo.set(key, Math.min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    return memo.get(key)!;
  };
  return d(a.length, b.length);
}

describe('editDistance', () => {
  it('counts insertions, deletions, substitutions and swaps', () => {
    expect(editDistance('hiden_size', 'hidden_size')).toBe(1);
    expect(editDistance('fractoin', 'fraction')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('agrees with Levenshtein, except that a swap costs one edit instead of two', () => {
    const word = fc.string({ unit: fc.constantFrom('a', 'b', 'c'), maxLength: 7 });
    fc.assert(
      fc.property(word, word, (a, b) => {
        const distance = editDistance(a, b);
        expect(distance).toBe(editDistance(b, a));
        expect(distance).toBeLessThanOrEqual(levenshtein(a, b));
        expect(distance).toBeGreaterThanOrEqual(Math.ceil(levenshtein(a, b) / 2));
        expect(distance === 0).toBe(a === b);
      }),
      { seed: 42, numRuns: 300 },
    );
  });
});

describe('closestMatch', () => {
  const keys = ['hidden_size', 'num_heads', 'num_kv_heads', 'head_dim'];

  it('suggests a likely typo and nothing for an unrelated word', () => {
    expect(closestMatch('hiden_size', keys)).toBe('hidden_size');
    expect(closestMatch('NUM_HEADS', keys)).toBe('num_heads');
    expect(closestMatch('learning_rate', keys)).toBeUndefined();
  });
});
