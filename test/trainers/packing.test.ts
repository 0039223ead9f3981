import { describe, expect, it } from 'vitest';
import { packGreedy, packStream, type PackedWindows } from '../../trainers/packing.ts';
import { promptResponseExample, textExample } from '../../datasets/text-examples.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';

const BOS = 256;
const EOS = 257;
const PAD = 258;
const tokenizer = createByteLevelTokenizer();
const [a, b, c, d, e, f] = [...'abcdef'].map((ch) => ch.charCodeAt(0));

function rows(windows: PackedWindows) {
  const width = windows.seqLen + 1;
  return Array.from({ length: windows.count }, (_, w) => ({
    ids: [...windows.ids.subarray(w * width, (w + 1) * width)],
    mask: [...windows.mask.subarray(w * width, (w + 1) * width)],
  }));
}

describe('packStream', () => {
  it('cuts the concatenated stream every seqLen tokens into overlapping windows of seqLen + 1', () => {
    // stream: BOS a b c EOS BOS d e EOS  (9 tokens, mask 0 1 1 1 1 0 1 1 1)
    const examples = [textExample('abc', tokenizer), textExample('de', tokenizer)];
    const { windows, stats } = packStream(examples, 3, PAD);
    expect(rows(windows)).toEqual([
      { ids: [BOS, a, b, c], mask: [0, 1, 1, 1] },
      { ids: [c, EOS, BOS, d], mask: [0, 1, 0, 1] },
      { ids: [d, e, EOS, PAD], mask: [0, 1, 1, 0] },
    ]);
    expect(stats).toEqual({ examples: 2, truncated: 0, skipped: 0, windows: 3, targetTokens: 7 });
  });

  it('makes every stream target a window target exactly once', () => {
    const examples = ['one', 'two words', 'three more words here'].map((t) => textExample(t, tokenizer));
    const streamTargets = examples.flatMap((x) => x.lossMask).reduce((s, m) => s + m, 0);
    for (const seqLen of [1, 2, 5, 16, 64]) {
      const { windows } = packStream(examples, seqLen, PAD);
      const windowTargets = rows(windows).reduce((s, r) => s + r.mask.slice(1).reduce((x, m) => x + m, 0), 0);
      expect(windowTargets).toBe(streamTargets);
      expect(rows(windows).every((r) => r.mask[0] === 0)).toBe(true);
    }
  });

  it('makes no window from fewer than two tokens', () => {
    expect(packStream([], 4, PAD).windows.count).toBe(0);
  });
});

describe('packGreedy', () => {
  const pair = (prompt: string, response: string) => promptResponseExample(prompt, response, tokenizer);

  it('keeps examples whole, starting a new window when the next does not fit, padding with mask 0', () => {
    // lengths: 4 (BOS a b EOS), 3 (BOS c EOS), 5 (BOS d e f EOS); window width 8
    const { windows, stats } = packGreedy([pair('a', 'b'), pair('', 'c'), pair('d', 'ef')], 7, PAD);
    expect(rows(windows)).toEqual([
      { ids: [BOS, a, b, EOS, BOS, c, EOS, PAD], mask: [0, 0, 1, 1, 0, 1, 1, 0] },
      { ids: [BOS, d, e, f, EOS, PAD, PAD, PAD], mask: [0, 0, 1, 1, 1, 0, 0, 0] },
    ]);
    expect(stats).toEqual({ examples: 3, truncated: 0, skipped: 0, windows: 2, targetTokens: 7 });
  });

  it('cuts an example longer than seqLen + 1 to its start and counts it', () => {
    const { windows, stats } = packGreedy([pair('a', 'bcdef')], 3, PAD);
    expect(rows(windows)).toEqual([{ ids: [BOS, a, b, c], mask: [0, 0, 1, 1] }]);
    expect(stats.truncated).toBe(1);
  });

  it('skips an example whose targets were all cut off', () => {
    const { windows, stats } = packGreedy([pair('abcdef', 'x'), pair('a', 'b')], 3, PAD);
    expect(rows(windows)).toEqual([{ ids: [BOS, a, b, EOS], mask: [0, 0, 1, 1] }]);
    expect(stats).toMatchObject({ examples: 2, truncated: 1, skipped: 1, windows: 1 });
  });

  it('rejects a seqLen that is not a positive integer', () => {
    expect(() => packGreedy([], 0, PAD)).toThrow('seqLen: expected a positive integer, got 0');
  });
});

describe('soft labels through packing and batching', () => {
  /** An example whose token i carries top-2 ids [100 + i, 200 + i] at logprobs [-i, -i - 1], from token `from` on. */
  function labelled(length: number, from: number, tag: number) {
    const k = 2;
    const ids = new Int32Array(length * k);
    const logprobs = new Float32Array(length * k).fill(-Infinity);
    for (let i = from; i < length; i++) {
      ids.set([tag + i, tag + 50 + i], i * k);
      logprobs.set([-i, -i - 1], i * k);
    }
    return {
      ids: Array.from({ length }, (_, i) => tag + i),
      lossMask: Array.from({ length }, (_, i) => (i >= from ? 1 : 0)),
      softLabels: { k, ids, logprobs },
    };
  }

  it('keeps each token\'s top-k next to it in windows and batches, aligned with the targets', async () => {
    const { BatchIterator } = await import('../../trainers/batches.ts');
    // widths 4 and 3 share a window of 8; the third (6 tokens) is cut to 4 in a window of its own.
    const examples = [labelled(4, 2, 100), labelled(3, 1, 300), labelled(6, 2, 500)];
    const { windows } = packGreedy(examples, 3, PAD);
    expect(windows.count).toBe(3);
    const soft = windows.softLabels!;
    const at = (w: number, t: number) => [...soft.ids.subarray((w * 4 + t) * 2, (w * 4 + t + 1) * 2)];
    expect(at(0, 2)).toEqual([102, 152]);
    expect(at(1, 1)).toEqual([301, 351]);
    expect(at(2, 3)).toEqual([503, 553]);
    expect(soft.logprobs[(0 * 4 + 1) * 2]).toBe(-Infinity); // a prompt token: no soft label

    const batches = new BatchIterator(windows, 3, 0);
    const batch = batches.nextBatch();
    const k = 2;
    for (let position = 0; position < batch.targets.length; position++) {
      const target = batch.targets[position];
      const top = batch.softLabels!.ids[position * k];
      const logprob = batch.softLabels!.logprobs[position * k];
      // Every scored target has its own soft label (top-1 id = target id here), every other none.
      if (batch.mask[position] === 1) expect(top).toBe(target);
      else expect(logprob).toBe(-Infinity);
    }
  });
});
