/**
 * Deterministic train/validation split keyed on content: each item gets a seeded hash of its key, and the
 * items with the smallest hashes are validation. The same records land on the same side whatever the
 * file order, the tokenizer or the other records, and the count is exactly round(fraction * n).
 */
import { DatasetError } from './errors.ts';

export type ValidationSpec = { fraction: number } | { path: string };

export interface Split<T> {
  train: T[];
  validation: T[];
}

/** Both sides keep the input order. At least one item goes to each side when fraction > 0. */
export function splitByHash<T>(items: readonly T[], keyOf: (item: T) => string, fraction: number, seed: number): Split<T> {
  if (!(fraction >= 0 && fraction < 1)) {
    throw new DatasetError(`validation.fraction: expected a number in [0, 1), got ${fraction}`);
  }
  const count = validationCount(items.length, fraction);
  const byHash = items
    .map((item, index) => ({ index, hash: hashString(keyOf(item), seed) }))
    .sort((a, b) => a.hash - b.hash || a.index - b.index);
  const isValidation = new Set(byHash.slice(0, count).map((entry) => entry.index));
  return {
    train: items.filter((_, i) => !isValidation.has(i)),
    validation: items.filter((_, i) => isValidation.has(i)),
  };
}

/**
 * The split a recipe's data.validation asks for: none; a held-out file (read by `readHeldOut`), the items all
 * training; or a hashed share of the items.
 */
export async function splitBySpec<T>(
  items: T[],
  keyOf: (item: T) => string,
  spec: ValidationSpec | undefined,
  seed: number,
  readHeldOut: (path: string) => Promise<T[]>,
): Promise<Split<T>> {
  if (spec === undefined) return { train: items, validation: [] };
  if ('path' in spec) return { train: items, validation: await readHeldOut(spec.path) };
  return splitByHash(items, keyOf, spec.fraction, seed);
}

function validationCount(n: number, fraction: number): number {
  if (fraction === 0) return 0;
  if (n < 2) throw new DatasetError(`validation.fraction: needs at least 2 records to split, got ${n}`);
  return Math.min(n - 1, Math.max(1, Math.round(fraction * n)));
}

/**
 * FNV-1a over UTF-16 code units, seeded, then murmur3's finalizer to spread the bits. Unsigned 32-bit.
 * The seed is spread by the finalizer before it enters the offset basis: XORed in raw, seeds 0 and 1 made
 * "0..." and "1..." hash alike, so the samples of a prompt drawn under one seed were another seed's,
 * reordered. The finalizer keeps 0 at 0, so seed 0 hashes as before.
 */
export function hashString(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ finalize(seed)) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  }
  return finalize(h);
}

/** murmur3's fmix32. */
function finalize(value: number): number {
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
