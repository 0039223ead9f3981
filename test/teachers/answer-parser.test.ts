import { describe, expect, it } from 'vitest';
import { parseAnswer } from '../../src/teachers/answer-packing.mjs';
import { parseLabeledAnswer, unpackLogprobs } from '../../src/teachers/answer-parser.ts';
import type { TokenLogprob, TopLogprob, WireLogprob } from '../../src/teachers/teacher.ts';

const CHAT_LOGPROBS = ['choices', 0, 'logprobs', 'content'] as const;

/** The conversion written out plainly, entry by entry: what the packed path must reproduce. */
function expectedTokens(wire: WireLogprob[]): TokenLogprob[] {
  const top = (entry: { token: string; logprob: number; bytes?: number[] | null }): TopLogprob =>
    entry.bytes ? { token: entry.token, bytes: entry.bytes, logprob: entry.logprob } : { token: entry.token, logprob: entry.logprob };
  return wire.map((entry) => ({ ...top(entry), top: (entry.top_logprobs ?? []).map(top) }));
}

const bytesOf = (text: string) => [...Buffer.from(text, 'utf8')];
const euro = bytesOf('€'); // three bytes; a server that splits it sends each part as U+FFFD with its own bytes

/** A chat answer with non-ASCII text, tokens with and without bytes, and two parts of one character. */
const WIRE: WireLogprob[] = [
  {
    token: ' café', logprob: -0.125, bytes: bytesOf(' café'),
    top_logprobs: [
      { token: ' café', logprob: -0.125, bytes: bytesOf(' café') },
      { token: ' cafe', logprob: -2.5, bytes: bytesOf(' cafe') },
    ],
  },
  {
    token: '\uFFFD', logprob: -0.75, bytes: euro.slice(0, 1),
    top_logprobs: [
      { token: '\uFFFD', logprob: -0.75, bytes: euro.slice(0, 1) },
      { token: '\uFFFD', logprob: -1.25, bytes: euro.slice(0, 2) },
      { token: '!', logprob: -3, bytes: null },
    ],
  },
  { token: '\uFFFD', logprob: -0.0625, bytes: euro.slice(1, 3), top_logprobs: [] },
  { token: ' 🙂', logprob: -1 / 3 },
];

function chatAnswer(content: unknown) {
  return { id: 'x', choices: [{ index: 0, message: { role: 'assistant', content: 'text é' }, logprobs: { content, refusal: null }, finish_reason: 'stop' }] };
}

const encode = (value: unknown) => new Uint8Array(Buffer.from(JSON.stringify(value), 'utf8'));

describe('parseAnswer and unpackLogprobs', () => {
  it('reproduce the entry-by-entry conversion, bytes included, and leave the rest of the answer as sent', () => {
    const parsed = parseAnswer(encode(chatAnswer(WIRE)), CHAT_LOGPROBS);
    if (!('json' in parsed) || !parsed.packed) throw new Error('expected a packed answer');
    expect(unpackLogprobs(parsed.packed)).toEqual(expectedTokens(WIRE));
    expect(parsed.json).toEqual(chatAnswer(null));
    // Each distinct (text, bytes) pair is stored once: the three parts of the euro sign are three pairs.
    expect(parsed.packed.tokens).toEqual([' café', ' cafe', '\uFFFD', '\uFFFD', '!', '\uFFFD', ' 🙂']);
  });

  it('decodes ASCII and UTF-8 bodies alike', () => {
    const ascii = [{ token: 'a', logprob: -1, top_logprobs: [{ token: 'b', logprob: -2 }] }];
    for (const wire of [ascii, WIRE]) {
      const parsed = parseAnswer(encode({ logprobs: wire, message: { content: '¿qué?' } }), ['logprobs']);
      if (!('json' in parsed) || !parsed.packed) throw new Error('expected a packed answer');
      expect(unpackLogprobs(parsed.packed)).toEqual(expectedTokens(wire));
      expect(parsed.json).toEqual({ logprobs: null, message: { content: '¿qué?' } });
    }
  });

  it('packs nothing where the path leads nowhere, and parses answers without a path whole', () => {
    const noLogprobs = { choices: [{ message: { content: 'hi' }, logprobs: null }] };
    expect(parseAnswer(encode(noLogprobs), CHAT_LOGPROBS)).toEqual({ json: noLogprobs });
    expect(parseAnswer(encode({ choices: [] }), CHAT_LOGPROBS)).toEqual({ json: { choices: [] } });
    expect(parseAnswer(encode({ logprobs: WIRE }), undefined)).toEqual({ json: { logprobs: WIRE } });
  });

  it('names what is wrong: a body that is not JSON, a list that is not one of token logprobs', () => {
    const problem = (body: Uint8Array) => (parseAnswer(body, CHAT_LOGPROBS) as { problem?: string }).problem;
    expect(problem(new Uint8Array(Buffer.from('{"choices": [')))).toMatch(/^malformed JSON \(/);
    expect(problem(encode(chatAnswer({ token: 'a' })))).toBe('`choices[0].logprobs.content` is not a list of token logprobs');
    const broken = (entry: unknown) => problem(encode(chatAnswer([WIRE[0], { token: 'x', logprob: -1, top_logprobs: [entry] }])));
    expect(broken({ token: 'y', logprob: '-1' })).toBe('`choices[0].logprobs.content[1].top_logprobs[0].logprob` is not a number');
    expect(broken({ logprob: -1 })).toBe('`choices[0].logprobs.content[1].top_logprobs[0].token` is not a string');
    expect(broken({ token: 'y', logprob: -1, bytes: [300] })).toBe('`choices[0].logprobs.content[1].top_logprobs[0].bytes` is not a list of bytes');
    expect(broken(7)).toBe('`choices[0].logprobs.content[1].top_logprobs[0]` is not a token logprob object');
    expect(problem(encode(chatAnswer([{ token: 'x', logprob: -1, top_logprobs: {} }])))).toBe('`choices[0].logprobs.content[0].top_logprobs` is not a list');
  });
});

describe('parseLabeledAnswer', () => {
  it('parses on the worker what parseAnswer parses here, answers concurrent calls with their own bodies', async () => {
    const answers = Array.from({ length: 6 }, (_, i) => chatAnswer(WIRE.slice(0, 1 + (i % WIRE.length))));
    const results = await Promise.all(answers.map((answer) => parseLabeledAnswer(encode(answer), CHAT_LOGPROBS)));
    results.forEach((result, i) => {
      const expected = chatAnswer(expectedTokens(answers[i].choices[0].logprobs.content as WireLogprob[]));
      expect(result).toEqual({ json: expected });
    });
    expect(await parseLabeledAnswer(new Uint8Array(Buffer.from('not json')), CHAT_LOGPROBS)).toEqual({
      problem: expect.stringMatching(/^malformed JSON/),
    });
  });

  it('copies a small body out of Buffer\'s shared pool rather than taking the pool from its neighbours', async () => {
    const body = Buffer.from(JSON.stringify({ logprobs: [{ token: 'a', logprob: -1 }] }));
    const neighbour = Buffer.from('still here');
    expect(body.buffer).toBe(neighbour.buffer); // both small, both views of one pool
    const result = await parseLabeledAnswer(body, ['logprobs']);
    expect(result).toEqual({ json: { logprobs: [{ token: 'a', logprob: -1, top: [] }] } });
    expect(neighbour.toString()).toBe('still here');
    expect(body.byteLength).toBeGreaterThan(0);
  });
});
