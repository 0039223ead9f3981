import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMixedDataset } from '../../datasets/text-dataset.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';

const dir = mkdtempSync(join(tmpdir(), 'mix-'));
const write = (name: string, records: unknown[]) => {
  writeFileSync(join(dir, name), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return join(dir, name);
};
const pairs = write('pairs.jsonl', Array.from({ length: 10 }, (_, i) => ({ question: `${i} + 1?`, answer: `${i + 1}` })));
const chats = write(
  'chats.jsonl',
  Array.from({ length: 8 }, (_, i) => ({ messages: [{ role: 'user', content: `hi ${i}` }, { role: 'assistant', content: `hello ${i}` }] })),
);
const texts = write('texts.jsonl', Array.from({ length: 6 }, (_, i) => ({ text: `story ${i}` })));
const tokenizer = createByteLevelTokenizer();
const options = { seqLen: 64, batchSize: 2, seed: 5 };

describe('a mix of datasets', () => {
  it('weights each file: whole weights repeat its examples, a fraction takes that share, each with its own format settings', async () => {
    const sources = [
      { path: pairs, weight: 2, promptField: 'question', responseField: 'answer' },
      { path: chats, weight: 0.5 },
    ];
    const mixed = await loadMixedDataset(tokenizer, sources, options);
    expect(mixed.stats.train.examples).toBe(10 * 2 + 4);
    expect(mixed.format).toBe('prompt_response');
    expect(mixed.prompts).toHaveLength(24);
    // The same seed picks the same half.
    const again = await loadMixedDataset(tokenizer, sources, options);
    expect(again.prompts).toEqual(mixed.prompts);
    const other = await loadMixedDataset(tokenizer, sources, { ...options, seed: 6 });
    expect(other.prompts).not.toEqual(mixed.prompts);
  });

  it('splits each file for validation by the same fraction before weighting', async () => {
    const mixed = await loadMixedDataset(tokenizer, [{ path: pairs, weight: 3, promptField: 'question', responseField: 'answer' }, { path: chats, weight: 1 }], {
      ...options,
      validation: { fraction: 0.25 },
    });
    // round(0.25 * 10) = 3 and round(0.25 * 8) = 2 held out, unweighted; the rest weighted.
    expect(mixed.stats.validation!.examples).toBe(3 + 2);
    expect(mixed.stats.train.examples).toBe(7 * 3 + 6);
  });

  it('holds out a separate validation file once, whatever the number of sources', async () => {
    const held = write('held.jsonl', Array.from({ length: 5 }, (_, i) => ({ messages: [{ role: 'user', content: `q ${i}` }, { role: 'assistant', content: `a ${i}` }] })));
    const mixed = await loadMixedDataset(tokenizer, [{ path: chats, weight: 1 }, { path: chats, weight: 2 }], { ...options, validation: { path: held } });
    expect(mixed.stats.validation!.examples).toBe(5);
    expect(mixed.stats.train.examples).toBe(8 + 16);
  });

  it('refuses text mixed with examples, and a weight that is not positive', async () => {
    await expect(loadMixedDataset(tokenizer, [{ path: texts, weight: 1 }, { path: chats, weight: 1 }], options)).rejects.toThrow(
      /^data\.mix: mix text with text, and prompt\/response or messages with each other, not both \(.*texts\.jsonl: text, .*chats\.jsonl: messages\)/,
    );
    await expect(loadMixedDataset(tokenizer, [{ path: chats, weight: 0 }], options)).rejects.toThrow('data.mix: weight must be a positive number, got 0');
  });
});
