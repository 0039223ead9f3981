import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bytesToUnicode } from '../../src/tokenizer/byte-level.ts';
import { loadTokenizer, tokenizerFromJson } from '../../src/tokenizer/hf-tokenizer.ts';

function addedToken(id: number, content: string, special = true) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

/**
 * GPT-2 style: regex pre-split, byte alphabet at ids 0..255 (id = byte value), then merged tokens at
 * 256.. in merge order, then <|endoftext|>.
 */
const GPT2_MERGES = ['t h', 'Ġ t', 'th e', 'Ġt h', 'Ġth e', 'a t', 'Ġ c', 'Ġc at', 'i n', 'Ġ in', 'Ġ h', 'Ġh at'];
const GPT2_MERGED = GPT2_MERGES.map((m) => m.replace(' ', ''));
const ENDOFTEXT = 256 + GPT2_MERGED.length;

function gpt2Json() {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((char, byte) => (vocab[char] = byte));
  GPT2_MERGED.forEach((token, i) => (vocab[token] = 256 + i));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    added_tokens: [addedToken(ENDOFTEXT, '<|endoftext|>')],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, vocab, merges: GPT2_MERGES },
  };
}

/** Mistral-style SentencePiece BPE: Metaspace pre-tokenizer, byte fallback, <s> template. */
const SP_TOKENS = ['<unk>', '<s>', '</s>', '<0xF0>', '<0x9F>', '<0x98>', '<0x80>'];
const SP_PIECES = ['▁', 'h', 'e', 'l', 'o', 'w', 'r', 'd', 'i', '▁h', 'll', '▁he', '▁hell', 'or', '▁w'];
const SP_MERGES = [['▁', 'h'], ['l', 'l'], ['▁h', 'e'], ['▁he', 'll'], ['o', 'r'], ['▁', 'w']];

function sentencePieceJson() {
  const vocab = Object.fromEntries([...SP_TOKENS, ...SP_PIECES].map((t, i) => [t, i]));
  return {
    added_tokens: [addedToken(0, '<unk>'), addedToken(1, '<s>'), addedToken(2, '</s>')],
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges: SP_MERGES,
    },
  };
}

const spId = (piece: string) => [...SP_TOKENS, ...SP_PIECES].indexOf(piece);

function writeModelDir(json: object, config?: object): string {
  const dir = mkdtempSync(join(tmpdir(), 'hf-tokenizer-'));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  if (config) writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}

describe('GPT-2 style byte-level BPE', () => {
  const tokenizer = tokenizerFromJson(JSON.stringify(gpt2Json()));
  const id = (token: string) => 256 + GPT2_MERGED.indexOf(token);

  it('applies merges by rank within each regex piece', () => {
    // "the" -> t h e -> th e -> the.  " cat" -> Ġ c a t -> Ġ c at (rank 5 beats Ġc, rank 6) -> Ġc at -> Ġcat.
    // " the": th (rank 0) is merged before Ġt (rank 1) can be, and "Ġ th" is no merge: [Ġ, the].
    expect(tokenizer.encode('the cat in the hat')).toEqual([
      id('the'),
      id('Ġcat'),
      id('Ġin'),
      32,
      id('the'),
      id('Ġhat'),
    ]);
    expect(tokenizer.decode(tokenizer.encode('the cat in the hat'))).toBe('the cat in the hat');
  });

  it('falls back to single bytes outside the merges', () => {
    expect(tokenizer.encode('é!')).toEqual([0xc3, 0xa9, 0x21]);
  });

  it('finds <|endoftext|> as eos without a tokenizer_config.json, and no bos or pad', () => {
    expect(tokenizer.eosId).toBe(ENDOFTEXT);
    expect(tokenizer.bosId).toBeNull();
    expect(tokenizer.padId).toBeNull();
    expect(tokenizer.vocabSize).toBe(ENDOFTEXT + 1);
    expect(tokenizer.idOf('Ġcat')).toBe(id('Ġcat'));
    expect(tokenizer.idOf('<|endoftext|>')).toBe(ENDOFTEXT);
    expect(tokenizer.idOf('nope')).toBeUndefined();
  });

  it('adds nothing for addSpecialTokens when the post-processor is ByteLevel', () => {
    expect(tokenizer.encode('the', { addSpecialTokens: true })).toEqual([id('the')]);
  });

  it('parses special tokens in text only when asked', () => {
    expect(tokenizer.encode('the<|endoftext|>', { parseSpecialTokens: true })).toEqual([id('the'), ENDOFTEXT]);
    expect(tokenizer.encode('the<|endoftext|>')).not.toContain(ENDOFTEXT);
    expect(tokenizer.decode(tokenizer.encode('the<|endoftext|>'))).toBe('the<|endoftext|>');
  });

  it('takes bos/eos/pad and add_bos_token from tokenizer_config.json', async () => {
    const dir = writeModelDir(gpt2Json(), {
      bos_token: { content: '<|endoftext|>', __type: 'AddedToken' },
      eos_token: '<|endoftext|>',
      pad_token: null,
      add_bos_token: true,
    });
    const loaded = await loadTokenizer(dir);
    expect([loaded.bosId, loaded.eosId, loaded.padId]).toEqual([ENDOFTEXT, ENDOFTEXT, null]);
    expect(loaded.encode('the', { addSpecialTokens: true })).toEqual([ENDOFTEXT, id('the')]);
  });

  it('names the config file when a configured special token is not in the vocabulary', async () => {
    const dir = writeModelDir(gpt2Json(), { eos_token: '<|im_end|>' });
    await expect(loadTokenizer(dir)).rejects.toThrow(
      `${join(dir, 'tokenizer_config.json')}: eos_token "<|im_end|>" is not in the tokenizer's vocabulary`,
    );
  });
});

describe('SentencePiece (Llama/Mistral) style BPE with Metaspace', () => {
  const tokenizer = tokenizerFromJson(JSON.stringify(sentencePieceJson()));

  it('prepends ▁ once, merges by rank and falls back to bytes', () => {
    // ▁hello▁world: ▁h, ll, ▁he, ▁hell, then or, ▁w -> [▁hell, o, ▁w, or, l, d]
    expect(tokenizer.encode('hello world')).toEqual(['▁hell', 'o', '▁w', 'or', 'l', 'd'].map(spId));
    // ▁hi▁😀: ▁h i ▁ then 😀 is not in the vocabulary: its UTF-8 bytes F0 9F 98 80 as <0x..> tokens
    expect(tokenizer.encode('hi 😀')).toEqual([spId('▁h'), spId('i'), spId('▁'), 3, 4, 5, 6]);
  });

  it('decodes back through Replace, ByteFallback, Fuse and Strip', () => {
    expect(tokenizer.decode(tokenizer.encode('hello world'))).toBe('hello world');
    expect(tokenizer.decode(tokenizer.encode('hi 😀'))).toBe('hi 😀');
  });

  it('adds the template BOS, which add_bos_token=false in the config removes', () => {
    expect(tokenizer.bosId).toBe(1);
    expect(tokenizer.eosId).toBe(2);
    expect(tokenizer.encode('hello', { addSpecialTokens: true })).toEqual([1, spId('▁hell'), spId('o')]);
    const withoutBos = tokenizerFromJson(JSON.stringify(sentencePieceJson()), { add_bos_token: false });
    expect(withoutBos.encode('hello', { addSpecialTokens: true })).toEqual([spId('▁hell'), spId('o')]);
  });

  it('honours an explicit null bos_token in the config over the <s> fallback', () => {
    const noBos = tokenizerFromJson(JSON.stringify(sentencePieceJson()), { bos_token: null, eos_token: '</s>' });
    expect(noBos.bosId).toBeNull();
    expect(noBos.eosId).toBe(2);
  });
});

describe('loadTokenizer', () => {
  it('accepts a directory or the tokenizer.json path and reads the sibling config', async () => {
    const dir = writeModelDir(sentencePieceJson(), { pad_token: '<unk>' });
    const fromDir = await loadTokenizer(dir);
    const fromFile = await loadTokenizer(join(dir, 'tokenizer.json'));
    expect(fromDir.padId).toBe(0);
    expect(fromFile.padId).toBe(0);
    expect(fromFile.encode('hello world')).toEqual(fromDir.encode('hello world'));
  });

  it('names the file when it is missing or not JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-tokenizer-'));
    await expect(loadTokenizer(dir)).rejects.toThrow(`${join(dir, 'tokenizer.json')}: not found`);
    mkdirSync(join(dir, 'bad'));
    writeFileSync(join(dir, 'bad', 'tokenizer.json'), '{ "model": ');
    await expect(loadTokenizer(join(dir, 'bad'))).rejects.toThrow(
      new RegExp(`${join(dir, 'bad', 'tokenizer.json')}: invalid JSON`),
    );
  });

  it('names the key when tokenizer.json has another structure', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hf-tokenizer-'));
    const file = join(dir, 'tokenizer.json');
    const cases: [unknown, string][] = [
      [{ model: { type: 'BPE', vocab: { a: 0 }, merges: { 'a b': 0 } } }, 'model.merges: expected a list of merges ("a b" strings or [a, b] pairs)'],
      [{ model: { type: 'BPE', vocab: ['a'], merges: [] } }, 'model.vocab: expected an object of token -> id'],
      [{ model: { type: 'Bigram' } }, 'model.type: expected "type" BPE, Unigram, WordPiece or WordLevel'],
      [{ model: { type: 'Unigram', vocab: [['a', 0]] }, added_tokens: [{ id: 'one', content: 'x' }] }, 'added_tokens.0.id:'],
      [[1, 2], 'expected an object with a "model" key'],
    ];
    for (const [json, message] of cases) {
      writeFileSync(file, JSON.stringify(json));
      await expect(loadTokenizer(dir)).rejects.toThrow(`${file}: ${message}`);
    }
  });
});
