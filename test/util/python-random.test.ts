import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PythonRandom } from '../../src/util/python-random.ts';

/** Made by CPython (test/fixtures/python-random/make.py). */
const reference = JSON.parse(readFileSync(new URL('../fixtures/python-random/draws.json', import.meta.url), 'utf8')) as {
  sample: { seed: number; n: number; k: number; draws: number[][] }[];
  getrandbits: { seed: number; bits: number[]; values: number[] };
};

describe('PythonRandom', () => {
  it('draws the same bits as CPython for the same seed', () => {
    const rnd = new PythonRandom(reference.getrandbits.seed);
    expect(reference.getrandbits.bits.map((k) => rnd.getrandbits(k))).toEqual(reference.getrandbits.values);
  });

  it.each(reference.sample.map((c) => [`seed ${c.seed}, sample(range(${c.n}), ${c.k})`, c] as const))('%s in sequence as CPython', (_, c) => {
    const rnd = new PythonRandom(c.seed);
    const population = Array.from({ length: c.n }, (_, i) => i);
    expect(c.draws.map(() => rnd.sample(population, c.k))).toEqual(c.draws);
  });

  it('refuses what it does not implement', () => {
    expect(() => new PythonRandom(-1)).toThrow(/seed/);
    expect(() => new PythonRandom(1).sample([1, 2], 3)).toThrow(/k must be in 0..2/);
  });
});
