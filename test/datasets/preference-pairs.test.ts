import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BatchIterator, ValidationBatches } from '../../trainers/batches.ts';
import { packPairs } from '../../trainers/packing.ts';
import { loadPreferenceDataset, readPreferencePairs } from '../../datasets/preference-pairs.ts';
import type { TextExample } from '../../trainers/packing.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { tokenizerFromJson } from '../../src/tokenizer/hf-tokenizer.ts';
import type { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { chatmlTokenizerJson } from '../helpers/chatml-tokenizer.ts';

const bytes = createByteLevelTokenizer();

function writeJsonl(records: unknown[]): string {
  const path = join(mkdtempSync(join(tmpdir(), 'pairs-')), 'pairs.jsonl');
  writeFileSync(path, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

/** The example's target tokens, decoded. */
function targets(tokenizer: Tokenizer, example: TextExample): string {
  return tokenizer.decode(example.ids.filter((_, t) => example.lossMask[t] === 1));
}

function chatmlTokenizer(): Tokenizer {
  return tokenizerFromJson(chatmlTokenizerJson(), { eos_token: '<|im_end|>' });
}

describe('reading preference pairs', () => {
  it('puts the targets of a standard pair on each completion and EOS, with the prompt as context', async () => {
    const path = writeJsonl([{ prompt: 'Q: 2+2?\nA:', chosen: ' 4', rejected: ' 5, I think' }]);
    const [pair] = await readPreferencePairs(path, bytes);
    expect(pair.source).toBe(`${path}:1`);
    expect(bytes.decode(pair.chosen.ids)).toBe(bytes.decode([bytes.bosId!]) + 'Q: 2+2?\nA: 4' + bytes.decode([bytes.eosId!]));
    expect(targets(bytes, pair.chosen)).toBe(' 4' + bytes.decode([bytes.eosId!]));
    expect(targets(bytes, pair.rejected)).toBe(' 5, I think' + bytes.decode([bytes.eosId!]));
  });

  it('scores only the completion of a conversation, not the assistant turns of its prompt', async () => {
    const tokenizer = chatmlTokenizer();
    const prompt = [
      { role: 'user', content: '2+3?' },
      { role: 'assistant', content: '5' },
      { role: 'user', content: 'and 4+4?' },
    ];
    const explicit = writeJsonl([{ prompt, chosen: [{ role: 'assistant', content: '8' }], rejected: [{ role: 'assistant', content: '9' }] }]);
    const [pair] = await readPreferencePairs(explicit, tokenizer);
    expect(targets(tokenizer, pair.chosen)).toBe('8<|im_end|>\n');
    expect(targets(tokenizer, pair.rejected)).toBe('9<|im_end|>\n');
    // The same pair with the prompt left implicit: the messages both sides share.
    const implicit = writeJsonl([{ chosen: [...prompt, { role: 'assistant', content: '8' }], rejected: [...prompt, { role: 'assistant', content: '9' }] }]);
    const [same] = await readPreferencePairs(implicit, tokenizer);
    expect(same.chosen).toEqual(pair.chosen);
    expect(same.rejected).toEqual(pair.rejected);
  });

  it('names the record and the field that is wrong', async () => {
    await expect(readPreferencePairs(writeJsonl([{ prompt: 'a', chosen: 'b', rejected: 'c' }, { prompt: 'a', chosen: 'b' }]), bytes)).rejects.toThrow(
      /pairs\.jsonl:2: missing field "rejected"/,
    );
    await expect(readPreferencePairs(writeJsonl([{ prompt: 'a', chosen: 'b', rejected: 3 }]), bytes)).rejects.toThrow(/pairs\.jsonl:1: field "rejected" must be a string .* got number/);
    await expect(readPreferencePairs(writeJsonl([{ chosen: 'b', rejected: 'c' }]), bytes)).rejects.toThrow(/pairs\.jsonl:1: field "prompt" must be a string .* got nothing/);
    const same = [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }];
    await expect(readPreferencePairs(writeJsonl([{ chosen: same, rejected: same }]), chatmlTokenizer())).rejects.toThrow(/pairs\.jsonl:1: "chosen" and "rejected" do not differ/);
  });
});

describe('packing and batching pairs', () => {
  const example = (length: number, firstTarget: number): TextExample => ({
    ids: Array.from({ length }, (_, t) => 10 + t),
    lossMask: Array.from({ length }, (_, t) => (t >= firstTarget ? 1 : 0)),
  });

  it('gives each side a window of its own, cuts long sides and skips pairs left without targets', () => {
    const packed = packPairs(
      [
        { chosen: example(4, 2), rejected: example(3, 1) },
        { chosen: example(9, 3), rejected: example(5, 4) }, // chosen cut to 6 tokens
        { chosen: example(4, 2), rejected: example(8, 7) }, // rejected's only target is cut away
      ],
      5,
      0,
    );
    expect(packed.stats).toMatchObject({ examples: 3, truncated: 2, skipped: 1, windows: 2 });
    expect(packed.windows.count).toBe(4);
    expect([...packed.windows.ids.subarray(0, 6)]).toEqual([10, 11, 12, 13, 0, 0]);
    expect([...packed.windows.mask.subarray(6, 12)]).toEqual([0, 1, 1, 0, 0, 0]);
    expect([...packed.windows.ids.subarray(12, 18)]).toEqual([10, 11, 12, 13, 14, 15]);
  });

  it('batches chosen rows first and rejected rows second, pair by pair, with their reference log-probabilities', () => {
    const pairs = Array.from({ length: 5 }, (_, i) => ({ chosen: example(3 + i, 1), rejected: example(2 + i, 1) }));
    const { windows } = packPairs(pairs, 8, 0);
    windows.referenceLogps = Float32Array.from({ length: 10 }, (_, w) => -w);
    const iterator = new BatchIterator(windows, 2, 3);
    const seen: number[] = [];
    for (let b = 0; b < 5; b++) {
      const batch = iterator.nextBatch();
      expect([batch.pairs, batch.batchSize]).toEqual([2, 4]);
      for (let r = 0; r < 2; r++) {
        const chosenLength = batch.mask.subarray(r * 8, r * 8 + 8).reduce((a, m) => a + m, 0) + 1;
        const rejectedLength = batch.mask.subarray((r + 2) * 8, (r + 3) * 8).reduce((a, m) => a + m, 0) + 1;
        const pair = chosenLength - 3;
        expect(rejectedLength).toBe(2 + pair);
        expect([batch.referenceLogps![r], batch.referenceLogps![r + 2]]).toEqual([-2 * pair, -2 * pair - 1]);
        seen.push(pair);
      }
    }
    // Two epochs of five pairs: each pair once in each.
    expect(seen.slice(0, 5).sort()).toEqual([0, 1, 2, 3, 4]);
    expect(seen.slice(5, 10).sort()).toEqual([0, 1, 2, 3, 4]);
    const validation = [...new ValidationBatches(windows, 2).batches()];
    expect(validation.map((b) => b.pairs)).toEqual([2, 2, 1]);
    expect(validation[2].batchSize).toBe(2);
  });

  it('splits pairs for validation and asks for reference log-probabilities of both parts', async () => {
    const records = Array.from({ length: 40 }, (_, i) => ({ prompt: `${i}+1=`, chosen: `${i + 1}`, rejected: `${i + 2}` }));
    const asked: string[] = [];
    const data = await loadPreferenceDataset(writeJsonl(records), bytes, {
      seqLen: 16,
      batchSize: 4,
      seed: 0,
      validation: { fraction: 0.1 },
      referenceLogps: async (windows, part) => {
        asked.push(`${part}:${windows.count}`);
        return new Float32Array(windows.count).fill(part === 'train' ? -1 : -2);
      },
    });
    expect(asked).toEqual(['train:72', 'validation:8']);
    expect(data.stats.train.windows).toBe(36);
    expect(data.train.nextBatch().referenceLogps!.every((v) => v === -1)).toBe(true);
    expect([...data.validation!.batches()][0].referenceLogps!.every((v) => v === -2)).toBe(true);
  });
});
