import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTextDataset } from '../../datasets/text-dataset.ts';
import { readTextExamples } from '../../datasets/text-examples.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';

const SMALL_STORIES = new URL('../../datasets/data/stories-small.jsonl', import.meta.url).pathname;
const tokenizer = createByteLevelTokenizer();

describe('loadTextDataset', () => {
  it('packs the small story corpus into full windows whose targets are the story bytes', async () => {
    const data = await loadTextDataset(tokenizer, {
      path: SMALL_STORIES,
      seqLen: 64,
      batchSize: 4,
      seed: 1,
      validation: { fraction: 0.1 },
    });
    expect(data.format).toBe('text');
    const { train, validation } = data.stats;
    expect(train.examples + validation!.examples).toBe(220);
    expect(validation!.examples).toBe(22);
    const { examples } = await readTextExamples(SMALL_STORIES, tokenizer);
    const allTargets = examples.reduce((sum, e) => sum + e.example.ids.length - 1, 0);
    expect(train.targetTokens + validation!.targetTokens).toBe(allTargets);

    const batch = data.train.nextBatch();
    expect(batch.inputs).toHaveLength(4 * 64);
    for (let i = 0; i < 4 * 64 - 1; i++) {
      if ((i + 1) % 64 !== 0) expect(batch.targets[i]).toBe(batch.inputs[i + 1]);
    }
    const text = tokenizer.decode([...batch.targets.subarray(0, 64)].filter((id) => id < 256));
    expect(text).toMatch(/[a-z]+ [a-z]+/);
  });

  it('holds out the same records for the same seed and others for another seed', async () => {
    const load = (seed: number) =>
      loadTextDataset(tokenizer, { path: SMALL_STORIES, seqLen: 32, batchSize: 2, seed, validation: { fraction: 0.2 } });
    const firstBatch = async (seed: number) => [...(await load(seed)).validation!.batches(1)][0].inputs;
    expect(await firstBatch(3)).toEqual(await firstBatch(3));
    expect(await firstBatch(3)).not.toEqual(await firstBatch(4));
  });

  it('packs prompt/response pairs whole and reads validation from its own path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'text-dataset-'));
    const pairs = (n: number) =>
      Array.from({ length: n }, (_, i) => JSON.stringify({ prompt: `${i}+1=`, response: `${i + 1}` })).join('\n');
    writeFileSync(join(dir, 'train.jsonl'), pairs(30));
    writeFileSync(join(dir, 'val.jsonl'), pairs(3));
    const data = await loadTextDataset(tokenizer, {
      path: join(dir, 'train.jsonl'),
      seqLen: 15,
      batchSize: 2,
      seed: 1,
      validation: { path: join(dir, 'val.jsonl') },
    });
    expect(data.format).toBe('prompt_response');
    expect(data.stats.validation).toMatchObject({ examples: 3, truncated: 0 });
    // "0+1=" "1" -> BOS 0 + 1 = 1 EOS: 7 tokens, so two pairs share each 16-token window.
    const [first] = [...data.validation!.batches(1)];
    expect([...first.inputs.subarray(0, 15)]).toEqual([256, ...Buffer.from('0+1=1'), 257, 256, ...Buffer.from('1+1=2'), 257, 258]);
    // Targets: the response digit and EOS of each of the three pairs (two windows in the batch).
    expect(first.tokens).toBe(6);
  });

  it('rejects a validation file in another format, naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'text-dataset-'));
    writeFileSync(join(dir, 'train.jsonl'), '{"text":"abc"}\n{"text":"def"}\n');
    writeFileSync(join(dir, 'val.jsonl'), '{"prompt":"a","response":"b"}\n');
    await expect(
      loadTextDataset(tokenizer, {
        path: join(dir, 'train.jsonl'),
        seqLen: 8,
        batchSize: 1,
        seed: 1,
        validation: { path: join(dir, 'val.jsonl') },
      }),
    ).rejects.toThrow(`${join(dir, 'val.jsonl')}:1: missing field "text" (format text expects "text")`);
  });
});
