import { createHash } from 'node:crypto';
import type { Tokenizer } from './tokenizer.ts';

/** sha256 of the tokenizer's tokenizer.json: equal hashes mean the same ids for the same tokens. */
export function tokenizerHash(tokenizer: Tokenizer): string {
  return `sha256:${createHash('sha256').update(tokenizer.toJSON()).digest('hex')}`;
}
