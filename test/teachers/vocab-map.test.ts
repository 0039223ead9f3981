import { describe, expect, it } from 'vitest';
import { bytesToUnicode, createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { tokenizerFromJson } from '../../src/tokenizer/hf-tokenizer.ts';
import type { TokenLogprob, TopLogprob } from '../../src/teachers/teacher.ts';
import { byteFallbackToken, detectVocabularyStyle, TeacherVocabMap } from '../../src/teachers/vocab-map.ts';

const alphabet = bytesToUnicode();
/** A token in GPT-2's byte alphabet, from its bytes. */
const inAlphabet = (...bytes: number[]) => bytes.map((b) => alphabet[b]).join('');
const utf8 = (text: string) => [...new TextEncoder().encode(text)];

const EMOJI = utf8('😀'); // F0 9F 98 80
/** Pairs merged on top of the byte alphabet, each in the vocabulary at 256 + its index. */
const MERGES: [string, string][] = [
  [inAlphabet(0x20), 't'],
  ['h', 'e'],
  [inAlphabet(0x20, 0x74), 'he'],
  ['H', 'e'],
  ['l', 'l'],
  ['He', 'll'],
  ['Hell', 'o'],
  [inAlphabet(0xc3), inAlphabet(0xa9)],
  [inAlphabet(EMOJI[0]!), inAlphabet(EMOJI[1]!)],
  [inAlphabet(EMOJI[2]!), inAlphabet(EMOJI[3]!)],
];
const MERGED = MERGES.map(([a, b]) => a + b);
const gpt2Id = (token: string) => 256 + MERGED.indexOf(token);

function gpt2Tokenizer() {
  const vocab: Record<string, number> = {};
  alphabet.forEach((char, byte) => (vocab[char] = byte));
  MERGED.forEach((token, i) => (vocab[token] = 256 + i));
  const endOfText = 256 + MERGED.length;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json = {
    version: '1.0',
    added_tokens: [
      { id: endOfText, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, vocab, merges: MERGES },
  };
  return tokenizerFromJson(JSON.stringify(json));
}

/** Mistral-style: Metaspace, byte fallback. */
const SP_VOCAB = ['<unk>', '<s>', '</s>', '<0xF0>', '<0x9F>', '▁', 'h', 'e', '▁h', '▁he'];
function sentencePieceTokenizer() {
  const json = {
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    post_processor: null,
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }] },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      fuse_unk: true,
      byte_fallback: true,
      vocab: Object.fromEntries(SP_VOCAB.map((t, i) => [t, i])),
      merges: [['▁', 'h'], ['▁h', 'e']],
    },
  };
  return tokenizerFromJson(JSON.stringify(json));
}

const entry = (token: string, logprob = -1, extra: Partial<TopLogprob> = {}): TopLogprob => ({ token, logprob, ...extra });
const step = (sampled: TopLogprob, top: TopLogprob[]): TokenLogprob => ({ ...sampled, top });

describe('detectVocabularyStyle', () => {
  it('tells byte-level, SentencePiece and plain vocabularies apart', () => {
    expect(TeacherVocabMap.forStudent(gpt2Tokenizer()).style).toBe('byte-level');
    expect(TeacherVocabMap.forStudent(createByteLevelTokenizer()).style).toBe('byte-level');
    expect(TeacherVocabMap.forStudent(sentencePieceTokenizer()).style).toBe('sentencepiece');
    const wordPiece = { model: { type: 'WordPiece', vocab: {} }, pre_tokenizer: { type: 'Whitespace' } };
    expect(detectVocabularyStyle(wordPiece).style).toBe('plain');
    const llama2 = { model: { type: 'BPE' }, normalizer: { type: 'Sequence', normalizers: [{ type: 'Replace', pattern: { String: ' ' }, content: '▁' }] } };
    expect(detectVocabularyStyle(llama2).style).toBe('sentencepiece');
  });
});

describe('TeacherVocabMap.idOf with a GPT-2 style BPE student', () => {
  const map = TeacherVocabMap.forStudent(gpt2Tokenizer());

  it('rewrites token text into the byte alphabet', () => {
    expect(map.idOf(entry(' the'))).toBe(gpt2Id('Ġthe'));
    expect(map.idOf(entry('Hello'))).toBe(gpt2Id('Hello'));
    expect(map.idOf(entry('é'))).toBe(gpt2Id('Ã©'));
    expect(map.idOf(entry('<|endoftext|>'))).toBe(256 + MERGED.length);
  });

  it('maps the pieces of an emoji split across tokens from their raw bytes', () => {
    const first = map.idOf(entry('\uFFFD', -1, { bytes: EMOJI.slice(0, 2) }));
    const second = map.idOf(entry('bytes:\\x98\\x80', -1, { bytes: EMOJI.slice(2) }));
    expect(first).toBe(gpt2Id(inAlphabet(0xf0, 0x9f)));
    expect(second).toBe(gpt2Id(inAlphabet(0x98, 0x80)));
    // Decoded back, the two ids give the emoji: the mapping kept the bytes.
    expect(gpt2Tokenizer().decode([first!, second!])).toBe('😀');
  });

  it('leaves tokens the vocabulary lacks, and undecodable text without bytes, unmapped', () => {
    expect(map.idOf(entry(' cat'))).toBeUndefined();
    expect(map.idOf(entry('\uFFFD'))).toBeUndefined();
  });

  it('ignores teacher ids unless the tokenizer is shared, and then checks their range', () => {
    expect(map.idOf(entry(' the', -1, { id: 5 }))).toBe(gpt2Id('Ġthe'));
    const shared = TeacherVocabMap.forStudent(gpt2Tokenizer(), { sharedTokenizer: true });
    expect(shared.idOf(entry('whatever', -1, { id: 5 }))).toBe(5);
    expect(shared.idOf(entry('x', -1, { id: 100_000 }))).toBeUndefined();
    expect(shared.idOf(entry(' the'))).toBe(gpt2Id('Ġthe'));
  });
});

describe('TeacherVocabMap.idOf with other students', () => {
  it('maps single bytes of the scratch byte-level tokenizer and nothing longer', () => {
    const map = TeacherVocabMap.forStudent(createByteLevelTokenizer());
    expect(map.idOf(entry(' '))).toBe(0x20);
    expect(map.idOf(entry('H'))).toBe(0x48);
    expect(map.idOf(entry('x', -1, { bytes: [0xf0] }))).toBe(0xf0);
    expect(map.idOf(entry('é'))).toBeUndefined();
    expect(map.idOf(entry(' the'))).toBeUndefined();
    expect(map.idOf(entry('<|eos|>'))).toBe(257);
  });

  it('uses ▁ for spaces and <0xAB> tokens for lone bytes in a SentencePiece vocabulary', () => {
    const map = TeacherVocabMap.forStudent(sentencePieceTokenizer());
    expect(map.idOf(entry(' he'))).toBe(SP_VOCAB.indexOf('▁he'));
    expect(map.idOf(entry('h'))).toBe(SP_VOCAB.indexOf('h'));
    expect(map.idOf(entry('\uFFFD', -1, { bytes: [0xf0] }))).toBe(SP_VOCAB.indexOf(byteFallbackToken(0xf0)));
    expect(map.idOf(entry('\uFFFD', -1, { bytes: [0x98] }))).toBeUndefined();
    expect(map.idOf(entry(' hello'))).toBeUndefined();
  });
});

describe('TeacherVocabMap.mapSample', () => {
  const map = TeacherVocabMap.forStudent(gpt2Tokenizer());

  it('lays out [T, k] soft labels best first, dropping and counting unmapped alternatives', () => {
    const tokens = [
      step(entry('Hello', -0.1), [entry('Hello', -0.1), entry(' cat', -2), entry(' the', -3)]),
      step(entry(' the', -0.5), [entry(' the', -0.5), entry('é', -1.5)]),
    ];
    const sample = map.mapSample(tokens, 3);
    expect(sample.k).toBe(3);
    expect([...sample.ids]).toEqual([gpt2Id('Hello'), gpt2Id('Ġthe')]);
    expect([...sample.sampledLogprobs]).toEqual([Math.fround(-0.1), -0.5]);
    expect([...sample.topIds]).toEqual([gpt2Id('Hello'), gpt2Id('Ġthe'), 0, gpt2Id('Ġthe'), gpt2Id('Ã©'), 0]);
    expect([...sample.topLogprobs]).toEqual([Math.fround(-0.1), -3, -Infinity, -0.5, -1.5, -Infinity]);
    expect(sample.unmapped).toBe(1);
    expect(sample.unmappedSampled).toEqual([]);
  });

  it('defaults k to the longest top list and keeps the k best of a longer one', () => {
    const tokens = [step(entry('H', -1), [entry('e', -3), entry('H', -1), entry('l', -2)])];
    expect(map.mapSample(tokens).k).toBe(3);
    const two = map.mapSample(tokens, 2);
    expect([...two.topIds]).toEqual(['H', 'l'].map((c) => c.charCodeAt(0)));
    expect([...two.topLogprobs]).toEqual([-1, -2]);
  });

  it('sums teacher alternatives that land on the same student id', () => {
    const tokens = [step(entry('e', -0.7), [entry('e', -0.7), entry('\uFFFD', -1.9, { bytes: [0x65] })])];
    const sample = map.mapSample(tokens, 2);
    expect(sample.topIds[0]).toBe(0x65);
    expect(sample.topLogprobs[0]).toBeCloseTo(Math.log(Math.exp(-0.7) + Math.exp(-1.9)), 6);
    expect(sample.topLogprobs[1]).toBe(-Infinity);
  });

  it('reports positions whose sampled token does not map', () => {
    const tokens = [step(entry('Hello'), []), step(entry(' cat'), [entry(' the')])];
    const sample = map.mapSample(tokens);
    expect(sample.unmappedSampled).toEqual([1]);
    expect(sample.ids[1]).toBe(-1);
  });
});

describe('TeacherVocabMap.vocabularyAgreement', () => {
  const map = TeacherVocabMap.forStudent(gpt2Tokenizer());

  it('is compatible when every teacher token maps', () => {
    const result = map.vocabularyAgreement([[step(entry(' the'), [entry(' the'), entry('Hello')])]]);
    expect(result).toMatchObject({ mappedFraction: 1, checked: 3, compatible: true });
  });

  it('falls back to sequence-level distillation below the threshold', () => {
    const samples = [[step(entry(' the'), [entry(' the'), entry(' cat')])], [step(entry('Hello'), [entry(' dog')])]];
    const result = map.vocabularyAgreement(samples);
    expect(result.checked).toBe(5);
    expect(result.mappedFraction).toBeCloseTo(3 / 5, 12);
    expect(result.compatible).toBe(false);
    expect(result.message).toMatch(/sequence-level distillation/);
    expect(map.vocabularyAgreement(samples, 0.5).compatible).toBe(true);
  });

  it('is not compatible with nothing to check', () => {
    expect(map.vocabularyAgreement([]).compatible).toBe(false);
  });
});
