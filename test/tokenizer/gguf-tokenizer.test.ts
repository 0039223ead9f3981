import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesToUnicode } from '../../src/tokenizer/byte-level.ts';
import {
  KNOWN_GGUF_PRE_TOKENIZERS,
  ggufTokenizerFiles,
  tokenizerFromGguf,
  type GgufMetadata,
} from '../../src/tokenizer/gguf-tokenizer.ts';
import { tokenizerFromJson } from '../../src/tokenizer/hf-tokenizer.ts';

const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const USER_DEFINED = 4;
const BYTE = 6;

// ---- gpt2 (byte-level BPE) ------------------------------------------------------------------------------

const BYTE_CHARS = bytesToUnicode();
/** Merges chosen so that a different pre-tokenizer split would merge differently. */
const BPE_MERGES = [
  'h e', 'l l', 'he ll', 'hell o', // hello
  'Ġ w', 'o r', 'Ġw or', 'Ġwor l', 'Ġworl d', // Ġworld
  '( hello', // merges across GPT-2's split, within Llama 3's
  '1 2', '12 3', '123 4', '4 5', // digits: Llama 3 stops at 3
  "' s", "' S", "' t", // contractions
  'Ġ Ġ', 'Ċ Ċ', 'Ġ Ċ', // runs of blanks
  'd o', 'do n', // "don"
];
const BPE_SPECIALS: [string, number][] = [
  ['<|begin_of_text|>', CONTROL],
  ['<|eot_id|>', CONTROL],
  ['<tool>', USER_DEFINED],
];
const BPE_TOKENS = [
  ...BYTE_CHARS,
  ...BPE_MERGES.map((merge) => merge.replace(' ', '')),
  ...BPE_SPECIALS.map(([token]) => token),
];
const BPE_ID = new Map(BPE_TOKENS.map((token, id) => [token, id]));
const bpeId = (token: string) => BPE_ID.get(token)!;
const BOT = bpeId('<|begin_of_text|>');
const EOT = bpeId('<|eot_id|>');

function gpt2Metadata(pre: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'general.architecture': 'llama',
    'tokenizer.ggml.model': 'gpt2',
    ...(pre === undefined ? {} : { 'tokenizer.ggml.pre': pre }),
    'tokenizer.ggml.tokens': BPE_TOKENS,
    'tokenizer.ggml.token_type': [
      ...BYTE_CHARS.map(() => NORMAL),
      ...BPE_MERGES.map(() => NORMAL),
      ...BPE_SPECIALS.map(([, type]) => type),
    ],
    'tokenizer.ggml.merges': BPE_MERGES,
    'tokenizer.ggml.bos_token_id': BOT,
    'tokenizer.ggml.eos_token_id': EOT,
    ...extra,
  };
}

/** The JS transcription of llama.cpp's Llama 3 split (llama-vocab.cpp), independent of the generated JSON. */
const LLAMA3_SPLIT =
  /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

function isolate(text: string, regex: RegExp): string[] {
  const pieces: string[] = [];
  let end = 0;
  for (const match of text.matchAll(regex)) {
    if (match.index > end) pieces.push(text.slice(end, match.index));
    if (match[0].length > 0) pieces.push(match[0]);
    end = match.index + match[0].length;
  }
  if (end < text.length) pieces.push(text.slice(end));
  return pieces;
}

/** Textbook byte-level BPE: split, map bytes to GPT-2's alphabet, merge the best-ranked pair until none is left. */
function referenceBpe(text: string, split: RegExp, ignoreMerges: boolean): number[] {
  const ranks = new Map(BPE_MERGES.map((merge, rank) => [merge, rank]));
  return isolate(text, split).flatMap((piece) => {
    let symbols = [...Buffer.from(piece, 'utf8')].map((byte) => BYTE_CHARS[byte]);
    if (ignoreMerges && BPE_ID.has(symbols.join(''))) return [bpeId(symbols.join(''))];
    for (;;) {
      let best = -1;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (rank !== undefined && (best < 0 || rank < ranks.get(`${symbols[best]} ${symbols[best + 1]}`)!)) best = i;
      }
      if (best < 0) return symbols.map(bpeId);
      symbols = [...symbols.slice(0, best), symbols[best] + symbols[best + 1], ...symbols.slice(best + 2)];
    }
  });
}

/**
 * Characters and chunks that exercise each branch of the splits and the merges that tell them apart (no exotic
 * whitespace: JS and Oniguruma disagree on it).
 */
const TEXT_ALPHABET = [
  'h', 'e', 'l', 'o', 'w', 'r', 'd', 'n', 'S', 's', 't', "'", '(', '1', '2', '3', '4', '5', ' ', '  ', '\n', '\r\n', '\t',
  '.', 'é', '😀', '世', 'hello', ' world', '12345', "'S", "'t",
];
const arbitraryText = fc.array(fc.constantFrom(...TEXT_ALPHABET), { maxLength: 24 }).map((parts) => parts.join(''));

describe('tokenizerFromGguf, gpt2 model', () => {
  const llama3 = tokenizerFromGguf(gpt2Metadata('llama-bpe'));

  it('encodes by hand-computed ids', () => {
    expect(llama3.encode('hello world')).toEqual([bpeId('hello'), bpeId('Ġworld')]);
    // Llama 3 splits digits in groups of three and keeps "(" with the word after it.
    expect(llama3.encode('12345')).toEqual([bpeId('123'), bpeId('45')]);
    expect(llama3.encode('(hello')).toEqual([bpeId('(hello')]);
    // Contractions match in either case.
    expect(llama3.encode("'S")).toEqual([bpeId("'S")]);
    const gpt2 = tokenizerFromGguf(gpt2Metadata('gpt-2'));
    expect(gpt2.encode('12345')).toEqual([bpeId('1234'), bpeId('5')]);
    expect(gpt2.encode('(hello')).toEqual([bpeId('('), bpeId('hello')]);
    expect(gpt2.encode("'S")).toEqual([bpeId("'"), bpeId('S')]);
  });

  it.each(["don't", "I'M 1234567 (hello", 'hello  \n\n world', ' \t\n x', '12345.5', 'é😀世 hello'])(
    'splits %j as llama.cpp\'s Llama 3 regex does',
    (text) => {
      expect(llama3.encode(text)).toEqual(referenceBpe(text, LLAMA3_SPLIT, true));
      expect(llama3.decode(llama3.encode(text))).toBe(text);
    },
  );

  it('agrees with the independent Llama 3 and GPT-2 references on arbitrary text', () => {
    const gpt2 = tokenizerFromGguf(gpt2Metadata('gpt-2'));
    fc.assert(
      fc.property(arbitraryText, (text) => {
        expect(llama3.encode(text)).toEqual(referenceBpe(text, LLAMA3_SPLIT, true));
        expect(gpt2.encode(text)).toEqual(referenceBpe(text, GPT2_SPLIT, false));
        expect(llama3.decode(llama3.encode(text))).toBe(text);
      }),
      { seed: 11, numRuns: 150 },
    );
  });

  it('gives the same ids as the equivalent hand-written GPT-2 tokenizer.json', () => {
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    const handWritten = tokenizerFromJson(
      JSON.stringify({
        added_tokens: BPE_SPECIALS.map(([content, type]) => ({ id: bpeId(content), content, special: type === CONTROL, normalized: false })),
        normalizer: null,
        pre_tokenizer: byteLevel,
        post_processor: null,
        decoder: byteLevel,
        model: { type: 'BPE', vocab: Object.fromEntries(BPE_ID), merges: BPE_MERGES },
      }),
    );
    const fromGguf = tokenizerFromGguf(gpt2Metadata('gpt-2'));
    for (const text of ["don't do it", 'hello world 12345', '(hello)  \n\nworld', "it'S 😀<tool>x", '<|eot_id|>']) {
      expect(fromGguf.encode(text)).toEqual(handWritten.encode(text));
      expect(fromGguf.encode(text, { parseSpecialTokens: true })).toEqual(handWritten.encode(text, { parseSpecialTokens: true }));
    }
  });

  it('treats control tokens as special and user-defined tokens as always matched', () => {
    expect(llama3.encode('hello<|eot_id|>', { parseSpecialTokens: true })).toEqual([bpeId('hello'), EOT]);
    expect(llama3.encode('hello<|eot_id|>')).not.toContain(EOT);
    expect(llama3.encode('x<tool>y')).toEqual([bpeId('x'), bpeId('<tool>'), bpeId('y')]);
    expect(llama3.decode([bpeId('hello'), EOT])).toBe('hello<|eot_id|>');
    expect(llama3.decode([bpeId('hello'), EOT], { skipSpecialTokens: true })).toBe('hello');
  });

  it('adds BOS for Llama 3 by default and as tokenizer.ggml.add_bos_token says', () => {
    expect([llama3.bosId, llama3.eosId, llama3.padId, llama3.vocabSize]).toEqual([BOT, EOT, null, BPE_TOKENS.length]);
    expect(llama3.encode('hello', { addSpecialTokens: true })).toEqual([BOT, bpeId('hello')]);
    const qwen = tokenizerFromGguf(gpt2Metadata('qwen2'));
    expect(qwen.encode('hello', { addSpecialTokens: true })).toEqual([bpeId('hello')]);
    const both = tokenizerFromGguf(gpt2Metadata('qwen2', { 'tokenizer.ggml.add_bos_token': true, 'tokenizer.ggml.add_eos_token': true }));
    expect(both.encode('hello', { addSpecialTokens: true })).toEqual([BOT, bpeId('hello'), EOT]);
    // The saved tokenizer.json carries the same template, for tools that read it alone.
    expect(tokenizerFromJson(both.toJSON(), {}).encode('hello', { addSpecialTokens: true })).toEqual([BOT, bpeId('hello'), EOT]);
  });

  it('reads the pad id and the chat template', () => {
    const template = "{% for m in messages %}{{ m['content'] }}{% endfor %}";
    const tokenizer = tokenizerFromGguf(gpt2Metadata('llama3', { 'tokenizer.ggml.padding_token_id': EOT, 'tokenizer.chat_template': template }));
    expect(tokenizer.padId).toBe(EOT);
    expect(tokenizer.chatTemplate).toBe(template);
    expect(llama3.chatTemplate).toBeNull();
    expect(ggufTokenizerFiles(gpt2Metadata('llama3', { 'tokenizer.chat_template': template })).tokenizerConfig.chat_template).toBe(template);
  });

  it('compiles every known pre-tokenizer and round-trips text through it', () => {
    const text = "Hello World's 1234567 (x)\n\n\tDON'T 😀 é";
    for (const pre of KNOWN_GGUF_PRE_TOKENIZERS) {
      const tokenizer = tokenizerFromGguf(gpt2Metadata(pre));
      expect(tokenizer.decode(tokenizer.encode(text)), pre).toBe(text);
    }
  });

  it('falls back to GPT-2\'s split for a missing or unknown tokenizer.ggml.pre', () => {
    const gpt2Split = ggufTokenizerFiles(gpt2Metadata('gpt-2')).tokenizerJson;
    expect(ggufTokenizerFiles(gpt2Metadata('some-future-model')).tokenizerJson).toEqual(gpt2Split);
    expect(ggufTokenizerFiles(gpt2Metadata(undefined)).tokenizerJson).toEqual(gpt2Split);
  });

  it('reads Maps, typed arrays and bigint ids as a GGUF reader may return them', () => {
    const plain = gpt2Metadata('llama3');
    const decoded: GgufMetadata = new Map<string, unknown>([
      ...Object.entries(plain),
      ['tokenizer.ggml.token_type', Int32Array.from(plain['tokenizer.ggml.token_type'] as number[])],
      ['tokenizer.ggml.bos_token_id', BigInt(BOT)],
    ]);
    expect(ggufTokenizerFiles(decoded)).toEqual(ggufTokenizerFiles(plain));
  });
});

// ---- llama (SentencePiece BPE) --------------------------------------------------------------------------

const BYTE_TOKENS = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
/** Pieces and scores; a merged piece's score decides when it forms (higher first). */
const PIECES: [string, number][] = [
  ['▁', -100], ['H', -101], ['e', -102], ['l', -103], ['o', -104], ['w', -105], ['ö', -106], ['r', -107], ['d', -108],
  ['x', -109], ['y', -110], ['z', -111],
  ['ll', -1], ['▁H', -2], ['▁He', -3], ['llo', -4], ['▁Hello', -5], ['wö', -6], ['▁wö', -7], ['rl', -8], ['rld', -9],
  // "xy" has the lower id but the lower score: SentencePiece forms "yz" first.
  ['xy', -20], ['yz', -10],
];
const SP_SPECIALS: [string, number][] = [['<unk>', UNKNOWN], ['<s>', CONTROL], ['</s>', CONTROL]];
const SP_TOKENS = [...SP_SPECIALS.map(([t]) => t), ...BYTE_TOKENS, ...PIECES.map(([t]) => t), '<tool>'];
const SP_ID = new Map(SP_TOKENS.map((token, id) => [token, id]));
const spId = (token: string) => SP_ID.get(token)!;
const byteId = (byte: number) => 3 + byte;

function sentencePieceMetadata(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': SP_TOKENS,
    'tokenizer.ggml.scores': [0, 0, 0, ...BYTE_TOKENS.map(() => 0), ...PIECES.map(([, s]) => s), 0],
    'tokenizer.ggml.token_type': [...SP_SPECIALS.map(([, t]) => t), ...BYTE_TOKENS.map(() => BYTE), ...PIECES.map(() => NORMAL), USER_DEFINED],
    'tokenizer.ggml.bos_token_id': 1,
    'tokenizer.ggml.eos_token_id': 2,
    'tokenizer.ggml.unknown_token_id': 0,
    'tokenizer.ggml.add_bos_token': true,
    ...extra,
  };
}

/**
 * llama.cpp's SentencePiece BPE (llm_tokenizer_spm): merge the adjacent pair whose concatenation is the
 * highest-scoring token (leftmost on ties), then spell pieces outside the vocabulary as <0x..> bytes.
 */
function referenceSentencePiece(text: string): number[] {
  const score = new Map(PIECES);
  let symbols = Array.from(`▁${text.replaceAll(' ', '▁')}`);
  for (;;) {
    let best = -1;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const s = score.get(symbols[i] + symbols[i + 1]);
      if (s !== undefined && (best < 0 || s > score.get(symbols[best] + symbols[best + 1])!)) best = i;
    }
    if (best < 0) break;
    symbols = [...symbols.slice(0, best), symbols[best] + symbols[best + 1], ...symbols.slice(best + 2)];
  }
  return symbols.flatMap((s) => (SP_ID.has(s) ? [spId(s)] : [...Buffer.from(s, 'utf8')].map(byteId)));
}

describe('tokenizerFromGguf, llama (SentencePiece) model', () => {
  const tokenizer = tokenizerFromGguf(sentencePieceMetadata());

  it('encodes "Hello wörld 😀" by hand: leading ▁, merges by score, byte fallback for the emoji', () => {
    const ids = tokenizer.encode('Hello wörld 😀');
    expect(ids).toEqual([spId('▁Hello'), spId('▁wö'), spId('rld'), spId('▁'), byteId(0xf0), byteId(0x9f), byteId(0x98), byteId(0x80)]);
    expect(tokenizer.decode(ids)).toBe('Hello wörld 😀');
  });

  it('forms the higher-scoring piece first, not the lower id', () => {
    expect(tokenizer.encode('xyz')).toEqual([spId('▁'), spId('x'), spId('yz')]);
  });

  it('prepends ▁ even to text that starts with a space, and decode drops exactly that one', () => {
    expect(tokenizer.encode(' Hello')).toEqual([spId('▁'), spId('▁Hello')]);
    expect(tokenizer.decode(tokenizer.encode(' Hello'))).toBe(' Hello');
  });

  it('agrees with llama.cpp\'s algorithm on arbitrary text and decodes back', () => {
    const alphabet = ['H', 'e', 'l', 'o', 'w', 'ö', 'r', 'd', 'x', 'y', 'z', ' ', '😀', '\n', 'q', 'xyz', 'Hello', ' wörld'];
    const text = fc.array(fc.constantFrom(...alphabet), { maxLength: 20 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(text, (s) => {
        expect(tokenizer.encode(s)).toEqual(s === '' ? [] : referenceSentencePiece(s));
        expect(tokenizer.decode(tokenizer.encode(s))).toBe(s);
      }),
      { seed: 5, numRuns: 150 },
    );
  });

  it('adds <s> as add_bos_token says and parses control tokens only on request, restarting the ▁ prefix', () => {
    expect([tokenizer.bosId, tokenizer.eosId, tokenizer.vocabSize]).toEqual([1, 2, SP_TOKENS.length]);
    expect(tokenizer.encode('Hello', { addSpecialTokens: true })).toEqual([1, spId('▁Hello')]);
    expect(tokenizer.encode('Hello</s>Hello', { parseSpecialTokens: true })).toEqual([spId('▁Hello'), 2, spId('▁Hello')]);
    expect(tokenizer.encode('Hello</s>')).not.toContain(2);
    expect(tokenizer.encode('x<tool>y')).toEqual([spId('▁'), spId('x'), spId('<tool>'), spId('▁'), spId('y')]);
    const noBos = tokenizerFromGguf(sentencePieceMetadata({ 'tokenizer.ggml.add_bos_token': false }));
    expect(noBos.encode('Hello', { addSpecialTokens: true })).toEqual([spId('▁Hello')]);
  });

  it('honours add_space_prefix = false (Gemma)', () => {
    const noPrefix = tokenizerFromGguf(sentencePieceMetadata({ 'tokenizer.ggml.add_space_prefix': false }));
    expect(noPrefix.encode('Hello wörld')).toEqual([spId('H'), spId('e'), spId('llo'), spId('▁wö'), spId('rld')]);
    expect(noPrefix.decode(noPrefix.encode(' Hello wörld'))).toBe(' Hello wörld');
  });

  it('takes SentencePiece\'s default ids when the metadata has none, and reads Float32Array scores', () => {
    const metadata = sentencePieceMetadata({ 'tokenizer.ggml.scores': Float32Array.from(sentencePieceMetadata()['tokenizer.ggml.scores'] as number[]) });
    delete metadata['tokenizer.ggml.bos_token_id'];
    delete metadata['tokenizer.ggml.eos_token_id'];
    const defaults = tokenizerFromGguf(metadata);
    expect([defaults.bosId, defaults.eosId]).toEqual([1, 2]);
    expect(defaults.encode('Hello wörld 😀')).toEqual(tokenizer.encode('Hello wörld 😀'));
  });
});

describe('tokenizerFromGguf errors', () => {
  it('refuses an unknown tokenizer model, naming it and the supported ones', () => {
    expect(() => tokenizerFromGguf({ ...gpt2Metadata('gpt-2'), 'tokenizer.ggml.model': 'bert' }, { source: 'm.gguf' })).toThrow(
      'm.gguf: tokenizer.ggml.model: tokenizer model "bert" is not supported (supported: gpt2, llama)',
    );
  });

  it('names the key that is missing or malformed', () => {
    const { 'tokenizer.ggml.merges': _, ...noMerges } = gpt2Metadata('gpt-2');
    expect(() => tokenizerFromGguf(noMerges)).toThrow('GGUF metadata: tokenizer.ggml.merges: missing');
    expect(() => tokenizerFromGguf({ 'tokenizer.ggml.tokens': ['a'] })).toThrow('tokenizer.ggml.model: missing');
    expect(() => tokenizerFromGguf(gpt2Metadata('gpt-2', { 'tokenizer.ggml.merges': ['ab'] }))).toThrow(
      'tokenizer.ggml.merges[0]: expected two tokens separated by a space, got "ab"',
    );
    expect(() => tokenizerFromGguf(gpt2Metadata('gpt-2', { 'tokenizer.ggml.eos_token_id': 99999 }))).toThrow(
      `tokenizer.ggml.eos_token_id: expected a token id in [0, ${BPE_TOKENS.length}), got "99999"`,
    );
    expect(() => tokenizerFromGguf(gpt2Metadata('gpt-2', { 'tokenizer.ggml.tokens': [...BPE_TOKENS.slice(0, -1), 'h'] }))).toThrow(
      `tokenizer.ggml.tokens: duplicate token "h" at ids ${BPE_ID.get('h')} and ${BPE_TOKENS.length - 1}`,
    );
    expect(() => tokenizerFromGguf(sentencePieceMetadata({ 'tokenizer.ggml.scores': [0] }))).toThrow(
      `tokenizer.ggml.scores: has 1 entries, expected one per token (${SP_TOKENS.length})`,
    );
  });

  it('refuses add_bos_token without a BOS id, as llama.cpp does', () => {
    const { 'tokenizer.ggml.bos_token_id': _, ...noBos } = gpt2Metadata('llama3');
    expect(() => tokenizerFromGguf(noBos)).toThrow('tokenizer.ggml.add_bos_token: is true, but tokenizer.ggml.bos_token_id is not set');
  });
});
