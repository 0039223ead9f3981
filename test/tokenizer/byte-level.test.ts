import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BYTE_LEVEL_VOCAB_SIZE,
  byteLevelTokenizerJson,
  bytesToUnicode,
  createByteLevelTokenizer,
} from '../../src/tokenizer/byte-level.ts';
import { loadTokenizer } from '../../src/tokenizer/hf-tokenizer.ts';

const utf8 = (s: string) => [...Buffer.from(s, 'utf8')];

describe('bytesToUnicode', () => {
  it('is GPT-2 mapping: printable bytes are themselves, the rest shift to U+0100 in byte order', () => {
    const chars = bytesToUnicode();
    expect(new Set(chars).size).toBe(256);
    expect(chars[0x41]).toBe('A');
    expect(chars[0xe9]).toBe('é');
    expect(chars[0x00]).toBe('\u0100');
    expect(chars[0x0a]).toBe('Ċ'); // GPT-2's newline
    expect(chars[0x20]).toBe('Ġ'); // GPT-2's space
    expect(chars[0x7f]).toBe('\u0121');
    expect(chars[0xad]).toBe('\u0143'); // the last shifted byte (soft hyphen)
  });
});

describe('byte-level tokenizer', () => {
  const tokenizer = createByteLevelTokenizer();

  it('has 256 byte ids then bos, eos, pad', () => {
    expect(tokenizer.vocabSize).toBe(BYTE_LEVEL_VOCAB_SIZE);
    expect([tokenizer.bosId, tokenizer.eosId, tokenizer.padId]).toEqual([256, 257, 258]);
    expect(tokenizer.idOf('<|pad|>')).toBe(258);
    expect(tokenizer.idOf('Ġ')).toBe(32);
  });

  it.each([
    ['ascii', 'Hello, world.'],
    ['emoji', 'hi 😀👍🏽'],
    ['CJK', '世界你好'],
    ['combining', 'e\u0301 a\u0308'],
    ['control characters', '\u0000\u0001\t\r\n\u007f\u0085'],
    ['leading and repeated spaces', '  two  spaces .'],
  ])('encodes %s to exactly its UTF-8 bytes and decodes back', (_, text) => {
    const ids = tokenizer.encode(text);
    expect(ids).toEqual(utf8(text));
    expect(tokenizer.decode(ids)).toBe(text);
  });

  it('encodes any well-formed string to its UTF-8 bytes, losslessly', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
        const ids = tokenizer.encode(text);
        expect(ids).toEqual(utf8(text));
        expect(tokenizer.decode(ids)).toBe(text);
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  it('keeps special-token strings in text as plain bytes unless asked to parse them', () => {
    const text = 'a<|eos|>b';
    expect(tokenizer.encode(text)).toEqual(utf8(text));
    expect(tokenizer.encode(text, { parseSpecialTokens: true })).toEqual([97, 257, 98]);
    expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
  });

  it('adds BOS only when asked, and can skip specials when decoding', () => {
    expect(tokenizer.encode('hi', { addSpecialTokens: true })).toEqual([256, 104, 105]);
    expect(tokenizer.decode([256, 104, 105, 257])).toBe('<|bos|>hi<|eos|>');
    expect(tokenizer.decode([256, 104, 105, 257], { skipSpecialTokens: true })).toBe('hi');
    expect(tokenizer.decode([])).toBe('');
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tokenizer.decode([104, 259])).toThrow(/id 259 is outside the vocabulary \[0, 259\)/);
  });

  it('writes a standard tokenizer.json: BPE without merges, byte vocabulary, ByteLevel without regex', () => {
    const json = JSON.parse(tokenizer.toJSON());
    expect(json).toEqual(byteLevelTokenizerJson());
    expect(json.model.type).toBe('BPE');
    expect(json.model.merges).toEqual([]);
    expect(Object.keys(json.model.vocab)).toHaveLength(256);
    expect(json.pre_tokenizer).toMatchObject({ type: 'ByteLevel', use_regex: false, add_prefix_space: false });
    expect(json.decoder.type).toBe('ByteLevel');
    expect(json.added_tokens.map((t: { content: string }) => t.content)).toEqual(['<|bos|>', '<|eos|>', '<|pad|>']);
  });

  it('round-trips through loadTokenizer from the tokenizer.json alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'byte-level-'));
    writeFileSync(join(dir, 'tokenizer.json'), tokenizer.toJSON());
    const loaded = await loadTokenizer(join(dir, 'tokenizer.json'));
    const text = 'Mia saw 3 🐱 . Then <|bos|> ?';
    expect(loaded.encode(text)).toEqual(tokenizer.encode(text));
    expect(loaded.decode(loaded.encode(text))).toBe(text);
    expect([loaded.bosId, loaded.eosId, loaded.padId, loaded.vocabSize]).toEqual([256, 257, 258, 259]);
    expect(loaded.encode('x', { addSpecialTokens: true })).toEqual([256, 120]);
    expect(loaded.toJSON()).toBe(tokenizer.toJSON());
  });
});
