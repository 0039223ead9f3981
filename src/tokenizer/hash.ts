import { createHash } from 'node:crypto';
import { canonicalJson } from '../util/canonical-json.ts';
import type { Tokenizer } from './tokenizer.ts';

/**
 * sha256 of the tokenizer's tokenizer.json in canonical form (sorted keys, no whitespace), so the same
 * tokenizer saved by different tools hashes the same: equal hashes mean the same ids for the same tokens.
 */
export function tokenizerHash(tokenizer: Tokenizer): string {
  let hash = hashes.get(tokenizer);
  if (hash === undefined) {
    // A large vocabulary's tokenizer.json is megabytes: parse and hash it once per tokenizer.
    hash = `sha256:${createHash('sha256').update(canonicalJson(JSON.parse(tokenizer.toJSON()))).digest('hex')}`;
    hashes.set(tokenizer, hash);
  }
  return hash;
}

const hashes = new WeakMap<Tokenizer, string>();
