import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { GgufValue } from '../../src/formats/gguf/metadata.ts';
import { ggufTokenizerMetadata } from '../../src/model-files/gguf-vocab.ts';
import { BYTE_LEVEL_TOKENIZER_CONFIG, bytesToUnicode, createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { tokenizerFromGguf } from '../../src/tokenizer/gguf-tokenizer.ts';
import { tokenizerFromJson } from '../../src/tokenizer/hf-tokenizer.ts';
import { LLAMA3_SPLIT, MERGES, MERGES_VOCAB_SIZE, mergesTokenizer, QWEN2_SPLIT, type SmallTokenizer } from '../fixtures/gguf/tokenizers.ts';

const values = (entries: [string, GgufValue][]) => new Map(entries.map(([key, value]) => [key, value.value]));

/** What a GGUF reader makes of the exported metadata, next to the tokenizer.json it came from. */
function bothWays(tokenizer: SmallTokenizer, vocabSize: number) {
  const metadata = values(ggufTokenizerMetadata(tokenizer, vocabSize));
  return { metadata, original: tokenizerFromJson(tokenizer.json, tokenizer.config), fromGguf: tokenizerFromGguf(metadata) };
}

const SAMPLES = [
  'Hello world, hello WORLD!',
  "it's 1234567 o'clock, they'll say 3.14159",
  '  two spaces\n\nand\ttabs \n',
  'naïve 中文 🦙 ✅',
  'special <|eot_id|> text',
];

describe("the scratch models' byte-level tokenizer", () => {
  const scratch = { json: createByteLevelTokenizer().toJSON(), config: BYTE_LEVEL_TOKENIZER_CONFIG };
  const { metadata, original, fromGguf } = bothWays(scratch, 259);

  it('becomes a gpt2 vocabulary of the 256 byte characters and three control tokens', () => {
    expect(metadata.get('tokenizer.ggml.model')).toBe('gpt2');
    // without merges every byte is its own token, whatever the split
    expect(metadata.get('tokenizer.ggml.pre')).toBe('default');
    expect(metadata.get('tokenizer.ggml.tokens')).toEqual([...bytesToUnicode(), '<|bos|>', '<|eos|>', '<|pad|>']);
    expect(metadata.get('tokenizer.ggml.token_type')).toEqual([...new Array(256).fill(1), 3, 3, 3]);
    expect(metadata.get('tokenizer.ggml.merges')).toEqual([]);
    expect([256, 257, 258, true, false]).toEqual(
      ['bos_token_id', 'eos_token_id', 'padding_token_id', 'add_bos_token', 'add_eos_token'].map((k) => metadata.get(`tokenizer.ggml.${k}`)),
    );
  });

  it('reads back as a tokenizer that encodes any text the same way', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (text) => {
        for (const options of [{}, { addSpecialTokens: true }, { parseSpecialTokens: true }]) {
          expect(fromGguf.encode(text, options)).toEqual(original.encode(text, options));
        }
      }),
      { seed: 11, numRuns: 60 },
    );
  });
});

// ---- merges: the split decides the tokens ---------------------------------------------------------------

describe('a byte-level BPE tokenizer with merges', () => {
  it.each([
    ["Llama 3's split and ignore_merges", LLAMA3_SPLIT, true, 'llama-bpe'],
    ["Llama 3's split without ignore_merges (DBRX)", LLAMA3_SPLIT, false, 'dbrx'],
    ["Qwen2's split", QWEN2_SPLIT, false, 'qwen2'],
    ["GPT-2's split (ByteLevel's own regex)", undefined, false, 'gpt-2'],
  ])('with %s gets the pre-tokenizer name that tokenizes it the same way', (_, split, ignoreMerges, pre) => {
    const { metadata, original, fromGguf } = bothWays(mergesTokenizer(split, ignoreMerges), MERGES_VOCAB_SIZE);
    expect(metadata.get('tokenizer.ggml.pre')).toBe(pre);
    expect(metadata.get('tokenizer.ggml.merges')).toEqual(MERGES);
    for (const text of SAMPLES) expect(fromGguf.encode(text, { addSpecialTokens: true })).toEqual(original.encode(text, { addSpecialTokens: true }));
  });

  it('is refused when no split llama.cpp knows reproduces it', () => {
    // one letter at a time: "he" would never merge, which no llama.cpp split does
    expect(() => ggufTokenizerMetadata(mergesTokenizer('\\p{L}|[^\\p{L}]+'), MERGES_VOCAB_SIZE)).toThrow(
      /no tokenizer\.ggml\.pre that llama\.cpp knows splits text the way this tokenizer does \(tried dbrx, /,
    );
  });
});

describe('vocabulary layout and refusals', () => {
  it('pads a model vocabulary larger than the tokenizer with unused tokens, as the converter does', () => {
    const { metadata } = bothWays(mergesTokenizer(LLAMA3_SPLIT), MERGES_VOCAB_SIZE + 3);
    const tokens = metadata.get('tokenizer.ggml.tokens') as string[];
    expect(tokens.slice(-3)).toEqual(['[PAD275]', '[PAD276]', '[PAD277]']);
    expect((metadata.get('tokenizer.ggml.token_type') as number[]).slice(-4)).toEqual([1, 5, 5, 5]);
  });

  it('refuses a tokenizer with more ids than the model has embedding rows', () => {
    expect(() => ggufTokenizerMetadata(mergesTokenizer(LLAMA3_SPLIT), 100)).toThrow(/token .* has id \d+, but the model has 100 embedding rows/);
  });

  it('refuses BPE tokenizers that are neither byte-level nor SentencePiece-style (no byte fallback)', () => {
    const metaspace = JSON.parse(mergesTokenizer().json);
    metaspace.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
    metaspace.decoder = null;
    expect(() => ggufTokenizerMetadata({ json: JSON.stringify(metaspace) }, 300)).toThrow(
      /tokenizer\.json: only BPE tokenizers can be written to GGUF: byte-level .* or SentencePiece-style .*; this one has model.type "BPE", no ByteLevel pre-tokenizer and byte_fallback false/,
    );
  });

  it("writes a Mistral-style SentencePiece tokenizer.json (Metaspace pre-tokenizer) as model llama with a space prefix, tokenizing as SentencePiece", () => {
    const folder = join(import.meta.dirname, '../fixtures/sentencepiece/llama');
    const json = JSON.parse(readFileSync(join(folder, 'tokenizer.json'), 'utf8'));
    json.normalizer = null;
    json.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
    const metadata = new Map(ggufTokenizerMetadata({ json: JSON.stringify(json) }, 420).map(([key, value]) => [key, value.value]));
    expect(metadata.get('tokenizer.ggml.model')).toBe('llama');
    expect(metadata.get('tokenizer.ggml.add_space_prefix')).toBe(true);
    const { texts, ids } = JSON.parse(readFileSync(join(folder, 'expected.json'), 'utf8')) as { texts: string[]; ids: number[][] };
    const reader = tokenizerFromGguf(metadata);
    texts.forEach((text, i) => expect(reader.encode(text), text).toEqual(ids[i]));
  });

  it('copies the chat template, also the default one of a named list', () => {
    const tokenizer = mergesTokenizer(LLAMA3_SPLIT);
    const templates = [
      { name: 'tool_use', template: 'T' },
      { name: 'default', template: 'D' },
    ];
    const named = { ...tokenizer, config: { ...tokenizer.config, chat_template: templates } };
    expect(values(ggufTokenizerMetadata(named, 275)).get('tokenizer.chat_template')).toBe('D');
    expect(values(ggufTokenizerMetadata(tokenizer, 275)).has('tokenizer.chat_template')).toBe(false);
  });
});
