/**
 * Example shards must be readable by code that did not write them. Two readers that only get the path:
 * Polars (a Rust Arrow implementation, through nodejs-polars) and apache-arrow's file reader in a fresh
 * Node process (same library as the writer, but no shared state and only the IPC file format accepted).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { scanIPC } from 'nodejs-polars';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/util/rng.ts';
import { MANIFEST_METADATA_KEY, writeExampleShard } from '../../src/formats/arrow-examples.ts';
import type { ExampleManifest, ExampleRowInput } from '../../src/formats/arrow-examples.ts';

const VOCAB = 1000;
const K = 3;
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

function manifest(k: number): ExampleManifest {
  return {
    format_version: 1,
    teacher: { provider: 'ollama', model: 'qwen2.5:7b', digest: 'sha256:abc' },
    temperature: 0.7,
    k,
    tail: 'renormalize',
    tokenizer_hash: 'tok-1',
    vocab_size: VOCAB,
  };
}

/** Rows a reader could trip on (null lists, empty lists, -Infinity, non-ASCII), then seeded bulk rows. */
function shardRows(k: number, seed: number): ExampleRowInput[] {
  const rng = new Rng(seed);
  const random = () => rng.next();
  const ids = (n: number) => Array.from({ length: n }, () => Math.floor(random() * VOCAB));
  // Float32 values, so what a reader gives back compares exactly.
  const logprobs = (n: number) => Array.from({ length: n }, () => Math.fround(-random() * 12));
  const soft = (tokens: number) => (k > 0 ? { ids: ids(tokens * k), logprobs: logprobs(tokens * k) } : undefined);
  const impossible = soft(2);
  if (impossible) impossible.logprobs[k - 1] = -Infinity;
  const rows: ExampleRowInput[] = [
    { promptIds: [1, 2, 3], responseIds: ids(2), softLabels: impossible, sampledLogprob: logprobs(2), source: 'gsm8k/train.jsonl:1', requestKey: 'req-0' },
    { promptIds: [4], responseIds: ids(3), source: 'chat.jsonl:2 “quoted” ✓ 数学', requestKey: 'req-1' },
    { promptIds: [VOCAB - 1], responseIds: [], softLabels: soft(0), sampledLogprob: [], source: '', requestKey: 'req-2' },
  ];
  for (let i = 3; i < 24; i++) {
    const tokens = 1 + Math.floor(random() * 8);
    rows.push({
      promptIds: ids(1 + Math.floor(random() * 6)),
      responseIds: ids(tokens),
      softLabels: i % 4 === 0 ? undefined : soft(tokens),
      sampledLogprob: i % 2 === 0 ? logprobs(tokens) : undefined,
      source: `data.jsonl:${i + 1}`,
      requestKey: `req-${i}`,
    });
  }
  return rows;
}

function chunks(values: ArrayLike<number>, size: number): number[][] {
  return Array.from({ length: values.length / size }, (_, i) => Array.from(values).slice(i * size, (i + 1) * size));
}

/** A row as a reader sees it: columns by their Arrow names, lists as arrays, null where absent. */
function expectedRecord(row: ExampleRowInput, k: number): Record<string, unknown> {
  const soft = k > 0 && {
    topk_ids: row.softLabels ? chunks(row.softLabels.ids, k) : null,
    topk_logprobs: row.softLabels ? chunks(row.softLabels.logprobs, k) : null,
  };
  return {
    prompt_ids: Array.from(row.promptIds),
    response_ids: Array.from(row.responseIds),
    ...soft,
    sampled_logprob: row.sampledLogprob ? Array.from(row.sampledLogprob) : null,
    source: row.source,
    request_key: row.requestKey,
  };
}

function expectedColumns(k: number): string[] {
  const soft = k > 0 ? ['topk_ids', 'topk_logprobs'] : [];
  return ['prompt_ids', 'response_ids', ...soft, 'sampled_logprob', 'source', 'request_key'];
}

interface Shard {
  path: string;
  k: number;
  rows: ExampleRowInput[];
}

let dir: string;
let shards: Shard[];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arrow-independent-'));
  shards = [
    { path: join(dir, 'soft.arrow'), k: K, rows: shardRows(K, 11) },
    { path: join(dir, 'hard.arrow'), k: 0, rows: shardRows(0, 12) },
  ];
  for (const shard of shards) await writeExampleShard(shard.path, shard.rows, manifest(shard.k));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('example shards read by Polars', () => {
  it.each([K, 0])('reads every column of a k = %i shard as written', (k) => {
    const shard = shards.find((s) => s.k === k)!;
    // scanIPC takes any path; readIPC(string) treats names not ending in ".ipc" as inline file content.
    const frame = scanIPC(shard.path).collectSync();

    expect(frame.columns).toEqual(expectedColumns(k));
    expect(frame.height).toBe(shard.rows.length);
    expect(frame.toRecords()).toEqual(shard.rows.map((row) => expectedRecord(row, k)));
    const types = Object.fromEntries(Object.entries(frame.schema).map(([name, type]) => [name, String(type)]));
    expect(types).toMatchObject({
      prompt_ids: 'DataType(List(DataType(Int32)))',
      sampled_logprob: 'DataType(List(DataType(Float32)))',
      source: 'DataType(String)',
      ...(k > 0 && {
        topk_ids: `DataType(List(DataType(FixedSizeList(DataType(Int32),${k}))))`,
        topk_logprobs: `DataType(List(DataType(FixedSizeList(DataType(Float32),${k}))))`,
      }),
    });
  });
});

/**
 * Runs in a fresh Node with only the path as argument. It insists on the IPC *file* format (footer
 * present) and prints the manifest, the fields and the rows as JSON; -Infinity travels as a string.
 */
const FRESH_READER = `
import { readFileSync } from 'node:fs';
import { RecordBatchReader, Table, Vector } from 'apache-arrow';
const reader = RecordBatchReader.from(readFileSync(process.argv[1]));
if (!reader.isFile()) throw new Error('not an Arrow IPC file');
const table = new Table(reader.readAll());
const plain = (value) => (value instanceof Vector ? Array.from(value, plain) : value);
const names = table.schema.fields.map((field) => field.name);
const rows = Array.from({ length: table.numRows }, (_, i) =>
  Object.fromEntries(names.map((name) => [name, plain(table.getChild(name).get(i))])));
const fields = table.schema.fields.map((f) => ({ name: f.name, type: String(f.type), nullable: f.nullable }));
const out = { metadata: Object.fromEntries(table.schema.metadata), fields, rows };
console.log(JSON.stringify(out, (key, value) => (value === -Infinity ? '-Infinity' : value)));
`;

const execFileAsync = promisify(execFile);

async function readInFreshProcess(path: string) {
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', FRESH_READER, path], {
    cwd: REPO_ROOT,
  });
  return JSON.parse(stdout) as {
    metadata: Record<string, string>;
    fields: { name: string; type: string; nullable: boolean }[];
    rows: Record<string, unknown>[];
  };
}

function withInfinityAsString(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (key, v) => (v === -Infinity ? '-Infinity' : v)));
}

describe('example shards read by apache-arrow in a fresh process', () => {
  it.each([K, 0])('reads the manifest, schema and rows of a k = %i shard', async (k) => {
    const shard = shards.find((s) => s.k === k)!;
    const read = await readInFreshProcess(shard.path);

    expect(JSON.parse(read.metadata[MANIFEST_METADATA_KEY])).toEqual(manifest(k));
    expect(read.fields.map((f) => f.name)).toEqual(expectedColumns(k));
    const nullable = Object.fromEntries(read.fields.map((f) => [f.name, f.nullable]));
    expect(nullable).toMatchObject({ prompt_ids: false, response_ids: false, sampled_logprob: true, source: false });
    if (k > 0) {
      expect(read.fields.find((f) => f.name === 'topk_ids')).toMatchObject({
        type: `List<FixedSizeList[${k}]<Int32>>`,
        nullable: true,
      });
    }
    expect(read.rows).toEqual(withInfinityAsString(shard.rows.map((row) => expectedRecord(row, k))));
  });
});
