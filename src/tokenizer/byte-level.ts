/**
 * The tokenizer of students trained from scratch: ids 0..255 are the raw UTF-8 bytes, then three special
 * tokens. It is written as a standard tokenizer.json (a BPE model without merges over GPT-2's byte
 * alphabet) and run through the same code as any Hugging Face tokenizer, so a scratch model's
 * tokenizer.json loads in other tools and this project has one tokenizer code path.
 */
import type { Tokenizer } from './tokenizer.ts';
import { tokenizerFromJson } from './hf-tokenizer.ts';
import type { TokenizerConfigJson } from './special-tokens.ts';

export const BYTE_LEVEL_BOS = '<|bos|>';
export const BYTE_LEVEL_EOS = '<|eos|>';
export const BYTE_LEVEL_PAD = '<|pad|>';
export const BYTE_LEVEL_VOCAB_SIZE = 259;

const SPECIAL_TOKENS = [BYTE_LEVEL_BOS, BYTE_LEVEL_EOS, BYTE_LEVEL_PAD];

/** tokenizer_config.json to save next to the tokenizer.json, for tools that read special tokens from it. */
export const BYTE_LEVEL_TOKENIZER_CONFIG: TokenizerConfigJson = {
  tokenizer_class: 'PreTrainedTokenizerFast',
  bos_token: BYTE_LEVEL_BOS,
  eos_token: BYTE_LEVEL_EOS,
  pad_token: BYTE_LEVEL_PAD,
  clean_up_tokenization_spaces: false,
};

/**
 * GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes are shifted
 * to U+0100.. in byte order, so every byte is one visible character in the vocabulary.
 */
export function bytesToUnicode(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const chars: string[] = [];
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    chars.push(String.fromCharCode(printable(b) ? b : 256 + shifted++));
  }
  return chars;
}

/** The tokenizer.json document, in the field order the Rust `tokenizers` crate writes. */
export function byteLevelTokenizerJson(): object {
  const vocab = Object.fromEntries(bytesToUnicode().map((char, byte) => [char, byte]));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
  const bos = { SpecialToken: { id: BYTE_LEVEL_BOS, type_id: 0 } };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, i) => ({
      id: 256 + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: {
      type: 'TemplateProcessing',
      single: [bos, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [bos, { Sequence: { id: 'A', type_id: 0 } }, bos, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { [BYTE_LEVEL_BOS]: { id: BYTE_LEVEL_BOS, ids: [256], tokens: [BYTE_LEVEL_BOS] } },
    },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

/** Synchronous: the JSON is generated in memory. `encode(text)` is exactly `text`'s UTF-8 bytes. */
export function createByteLevelTokenizer(): Tokenizer {
  return tokenizerFromJson(JSON.stringify(byteLevelTokenizerJson(), null, 2), BYTE_LEVEL_TOKENIZER_CONFIG);
}
