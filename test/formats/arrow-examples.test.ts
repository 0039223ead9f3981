import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Field, Float32, Int32, List, RecordBatch, Schema, Table, tableFromIPC, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Rng } from '../../src/util/rng.ts';
import { readRecords } from '../../datasets/readers.ts';
import {
  checkManifestFits,
  ExampleShardError,
  MANIFEST_METADATA_KEY,
  readExampleShard,
  writeExampleShard,
} from '../../src/formats/arrow-examples.ts';
import type { ExampleManifest, ExampleRowInput } from '../../src/formats/arrow-examples.ts';

const VOCAB = 1000;

function manifest(overrides: Partial<ExampleManifest> = {}): ExampleManifest {
  return {
    format_version: 1,
    teacher: { provider: 'ollama', model: 'qwen2.5:7b', digest: 'sha256:abc' },
    temperature: 1,
    k: 3,
    tail: 'bucket',
    tokenizer_hash: 'tok-1',
    vocab_size: VOCAB,
    ...overrides,
  };
}

function randomRows(count: number, k: number, seed: number): ExampleRowInput[] {
  const rng = new Rng(seed);
  const random = () => rng.next();
  const ids = (n: number) => Array.from({ length: n }, () => Math.floor(random() * VOCAB));
  const logprobs = (n: number) => Array.from({ length: n }, () => Math.fround(-random() * 10));
  return Array.from({ length: count }, (_, i) => {
    const tokens = i === 0 ? 0 : 1 + Math.floor(random() * 6);
    const row: ExampleRowInput = {
      promptIds: ids(1 + Math.floor(random() * 5)),
      responseIds: ids(tokens),
      source: `data.jsonl:${i + 1}`,
      requestKey: `key-${i}`,
    };
    // Every third row has no soft labels, every other row no sampled logprobs.
    if (k > 0 && i % 3 !== 2) row.softLabels = { ids: ids(tokens * k), logprobs: logprobs(tokens * k) };
    if (i % 2 === 0) row.sampledLogprob = logprobs(tokens);
    return row;
  });
}

function plain(row: ExampleRowInput) {
  return {
    promptIds: Array.from(row.promptIds),
    responseIds: Array.from(row.responseIds),
    softLabels: row.softLabels && { ids: Array.from(row.softLabels.ids), logprobs: Array.from(row.softLabels.logprobs) },
    sampledLogprob: row.sampledLogprob && Array.from(row.sampledLogprob),
    source: row.source,
    requestKey: row.requestKey,
  };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arrow-examples-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('example shards', () => {
  it('round-trips rows with soft labels, without them, and with empty responses', async () => {
    const path = join(dir, 'shard-0.arrow');
    const rows = randomRows(12, 3, 7);
    await writeExampleShard(path, rows, manifest());
    const shard = await readExampleShard(path);
    expect(shard.manifest).toEqual(manifest());
    expect(shard.rows.map(plain)).toEqual(rows.map(plain));
    expect(shard.rows[0].responseIds).toHaveLength(0);
    expect(shard.rows[0].softLabels?.ids).toHaveLength(0);
    expect(shard.rows[2].softLabels).toBeUndefined();
    expect(shard.rows[1].sampledLogprob).toBeUndefined();
  });

  it('round-trips a shard with k = 0 and no soft-label columns', async () => {
    const path = join(dir, 'plain.arrow');
    const rows = randomRows(5, 0, 3);
    await writeExampleShard(path, rows, manifest({ k: 0, teacher: { provider: 'openai', model: 'm', digest: null } }));
    const shard = await readExampleShard(path);
    expect(shard.rows.map(plain)).toEqual(rows.map(plain));
    const table = tableFromIPC(await readFile(path));
    expect(table.schema.fields.map((f) => f.name)).toEqual([
      'prompt_ids',
      'response_ids',
      'sampled_logprob',
      'source',
      'request_key',
    ]);
  });

  it('round-trips a shard with no rows', async () => {
    const path = join(dir, 'empty.arrow');
    await writeExampleShard(path, [], manifest());
    expect((await readExampleShard(path)).rows).toEqual([]);
  });

  it('writes a plain Arrow IPC file with the documented column types and manifest', async () => {
    const path = join(dir, 'shard.arrow');
    const rows = randomRows(4, 2, 11);
    await writeExampleShard(path, rows, manifest({ k: 2, tail: 'renormalize' }));
    const bytes = await readFile(path);
    expect(new TextDecoder().decode(bytes.subarray(0, 6))).toBe('ARROW1');
    const table = tableFromIPC(bytes);
    const types = Object.fromEntries(table.schema.fields.map((f) => [f.name, String(f.type)]));
    expect(types).toEqual({
      prompt_ids: 'List<Int32>',
      response_ids: 'List<Int32>',
      topk_ids: 'List<FixedSizeList[2]<Int32>>',
      topk_logprobs: 'List<FixedSizeList[2]<Float32>>',
      sampled_logprob: 'List<Float32>',
      source: 'Utf8',
      request_key: 'Utf8',
    });
    expect(JSON.parse(table.schema.metadata.get(MANIFEST_METADATA_KEY)!)).toEqual(manifest({ k: 2, tail: 'renormalize' }));
    // apache-arrow's own accessors agree with the rows written: row 1, token 0, its k best ids.
    const tokenZero = table.getChild('topk_ids')!.get(1)!.get(0)!;
    expect(Array.from(tokenZero.toArray() as Int32Array)).toEqual(Array.from(rows[1].softLabels!.ids).slice(0, 2));
    expect(table.getChild('source')!.get(3)).toBe('data.jsonl:4');
    expect(table.getChild('sampled_logprob')!.get(1)).toBeNull();
  });

  it('refuses ids outside the vocabulary when writing', async () => {
    const rows = randomRows(3, 3, 5);
    rows[1] = { ...rows[1], promptIds: [1, VOCAB] };
    await expect(writeExampleShard(join(dir, 'bad.arrow'), rows, manifest())).rejects.toThrow(
      /row 1: prompt_ids.*id 1000 at 1 is outside the vocabulary \[0, 1000\)/,
    );
  });

  it('detects ids outside the vocabulary when reading a shard written by someone else', async () => {
    const path = join(dir, 'foreign.arrow');
    await writeExampleShard(path, randomRows(3, 3, 5), manifest({ vocab_size: 2 * VOCAB }));
    await rewriteManifest(path, (m) => ({ ...m, vocab_size: 10 }));
    await expect(readExampleShard(path)).rejects.toThrow(/foreign\.arrow: row 0: prompt_ids: id \d+ at 0 is outside/);
  });

  it('refuses soft labels whose length is not response tokens x k', async () => {
    const rows: ExampleRowInput[] = [
      { promptIds: [1], responseIds: [2, 3], softLabels: { ids: [1, 2, 3], logprobs: [-1, -2, -3] }, source: 's', requestKey: 'r' },
    ];
    await expect(writeExampleShard(join(dir, 'x.arrow'), rows, manifest())).rejects.toThrow(
      /topk_ids: has 3 values, expected 6 \(response tokens \(2\) x k \(3\)\)/,
    );
  });

  it('refuses positive or NaN logprobs', async () => {
    const rows: ExampleRowInput[] = [
      { promptIds: [1], responseIds: [2], sampledLogprob: [0.5], source: 's', requestKey: 'r' },
    ];
    await expect(writeExampleShard(join(dir, 'x.arrow'), rows, manifest())).rejects.toThrow(/sampled_logprob.*not a log-probability/);
  });

  it('names the file and key of a bad manifest', async () => {
    const path = join(dir, 'm.arrow');
    await writeExampleShard(path, randomRows(2, 3, 1), manifest());
    await rewriteManifest(path, (m) => ({ ...m, tail: 'drop' }));
    await expect(readExampleShard(path)).rejects.toThrow(/m\.arrow: manifest key "tail"/);
    await rewriteManifest(path, (m) => ({ ...m, tail: 'bucket', teacher: { provider: 'ollama', digest: null } }));
    await expect(readExampleShard(path)).rejects.toThrow(/m\.arrow: manifest key "teacher\.model"/);
  });

  it('refuses an unknown format_version', async () => {
    const path = join(dir, 'v2.arrow');
    await writeExampleShard(path, randomRows(2, 3, 1), manifest());
    await rewriteManifest(path, (m) => ({ ...m, format_version: 2 }));
    const error = await readExampleShard(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExampleShardError);
    expect((error as Error).message).toMatch(/v2\.arrow: manifest key "format_version" is 2: this version reads format_version 1 only/);
  });

  it('refuses an Arrow file with no manifest, and a file that is not Arrow', async () => {
    const noManifest = join(dir, 'plain.arrow');
    await writeFile(noManifest, tableToIPC(new Table({ a: vectorFromArray([1, 2]) }), 'file'));
    await expect(readExampleShard(noManifest)).rejects.toThrow(/plain\.arrow: no "slm_train\.manifest"/);
    const notArrow = join(dir, 'text.arrow');
    await writeFile(notArrow, 'hello');
    await expect(readExampleShard(notArrow)).rejects.toThrow(/text\.arrow: not an Arrow IPC file/);
  });

  it('says a shard cut short is truncated, wherever it was cut', async () => {
    const whole = tableToIPC(new Table({ a: vectorFromArray([1, 2, 3]) }), 'file');
    const cut = join(dir, 'cut.arrow');
    for (const length of [8, Math.floor(whole.length / 2), whole.length - 1]) {
      await writeFile(cut, whole.subarray(0, length));
      await expect(readExampleShard(cut)).rejects.toThrow(`${cut}: truncated: an Arrow IPC file ends with "ARROW1", and this one stops after ${length} bytes`);
      await expect(readRecords(cut)[Symbol.asyncIterator]().next()).rejects.toThrow(`${cut}: truncated`);
    }
  });

  it('refuses a column of the wrong type', async () => {
    const path = join(dir, 'wrong.arrow');
    const fields = [
      new Field('prompt_ids', new List(new Field('item', new Float32()))),
      new Field('response_ids', new List(new Field('item', new Int32()))),
      new Field('sampled_logprob', new List(new Field('item', new Float32()))),
      new Field('source', new Utf8()),
      new Field('request_key', new Utf8()),
    ];
    const table = new Table({
      prompt_ids: vectorFromArray([[1.5]], fields[0].type),
      response_ids: vectorFromArray([[1]], fields[1].type),
      sampled_logprob: vectorFromArray([[-1]], fields[2].type),
      source: vectorFromArray(['s'], new Utf8()),
      request_key: vectorFromArray(['r'], new Utf8()),
    });
    const schema = new Schema(table.schema.fields, new Map([[MANIFEST_METADATA_KEY, JSON.stringify(manifest({ k: 0 }))]]));
    const withManifest = new Table(table.batches.map((b) => new RecordBatch(schema, b.data)));
    await writeFile(path, tableToIPC(withManifest, 'file'));
    await expect(readExampleShard(path)).rejects.toThrow(/column "prompt_ids" has type List<Float32>, expected List<Int32>/);
  });
});

describe('checkManifestFits', () => {
  it('accepts the same tokenizer, and a student whose embedding is padded beyond the vocabulary', () => {
    expect(() => checkManifestFits(manifest({ vocab_size: 151_936 }), { vocabSize: 152_064, tokenizerHash: 'tok-1' })).not.toThrow();
  });

  it('refuses another tokenizer and a smaller student vocabulary, suggesting sequence-level KD', () => {
    expect(() => checkManifestFits(manifest(), { vocabSize: VOCAB, tokenizerHash: 'tok-2' }, 'a.arrow')).toThrow(
      /a\.arrow: tokenizer_hash tok-1 does not match the student's tokenizer tok-2: .*sequence-level KD/,
    );
    expect(() => checkManifestFits(manifest(), { vocabSize: VOCAB - 1, tokenizerHash: 'tok-1' })).toThrow(
      /vocab_size 1000 is larger than the student's 999/,
    );
  });
});

/** Rewrites a shard's manifest in place, keeping its data, as a foreign or future writer would. */
async function rewriteManifest(path: string, change: (m: Record<string, unknown>) => unknown): Promise<void> {
  const table = tableFromIPC(await readFile(path));
  const old = JSON.parse(table.schema.metadata.get(MANIFEST_METADATA_KEY)!) as Record<string, unknown>;
  const schema = new Schema(table.schema.fields, new Map([[MANIFEST_METADATA_KEY, JSON.stringify(change(old))]]));
  await writeFile(path, tableToIPC(new Table(table.batches.map((b) => new RecordBatch(schema, b.data))), 'file'));
}
