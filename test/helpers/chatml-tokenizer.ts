import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';

/** The byte-level tokenizer.json with ChatML's markers added as special tokens (ids 259, 260), as Qwen's tokenizer has them. */
export function chatmlTokenizerJson(): string {
  const json = JSON.parse(createByteLevelTokenizer().toJSON());
  for (const [i, content] of ['<|im_start|>', '<|im_end|>'].entries()) {
    json.added_tokens.push({ id: 259 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  }
  return JSON.stringify(json);
}
