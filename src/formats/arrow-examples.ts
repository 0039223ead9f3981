/**
 * Shards of training examples as Arrow IPC files (the "file" format, `.arrow`, readable by pyarrow's
 * `pa.ipc.open_file`, DuckDB, Polars `pl.read_ipc`). One row per example:
 *
 *   prompt_ids       List<Int32>                          not null
 *   response_ids     List<Int32>                          not null
 *   topk_ids         List<FixedSizeList<Int32>[k]>        null where the row has no soft labels
 *   topk_logprobs    List<FixedSizeList<Float32>[k]>      null where the row has no soft labels
 *   sampled_logprob  List<Float32>                        null where the teacher gave none
 *   source           Utf8                                 not null
 *   request_key      Utf8                                 not null
 *
 * The soft-label lists hold one entry per response token, each the teacher's k best ids and their
 * logprobs: a fixed-size list keeps k out of every row and lets a reader take the whole [T, k] block as
 * one contiguous buffer. A shard whose manifest has k = 0 has no soft-label columns at all.
 * The schema metadata key `slm_train.manifest` holds the JSON manifest (see `ExampleManifest`).
 */
import { readFile } from 'node:fs/promises';
import {
  DataType,
  Field,
  FixedSizeList,
  Float32,
  Int32,
  List,
  makeData,
  Precision,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableFromIPC,
  tableToIPC,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import type { Data, Vector } from 'apache-arrow';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic.ts';
import { describeValue, FormatError } from './format-error.ts';

export const EXAMPLE_FORMAT_VERSION = 1;
export const MANIFEST_METADATA_KEY = 'slm_train.manifest';
/** The Arrow IPC file format's leading magic (the stream format has none and is not what we write). */
const ARROW_MAGIC = 'ARROW1';

export class ExampleShardError extends FormatError {
  constructor(file: string, detail: string, options: { cause?: unknown } = {}) {
    super(file, 'ERR_EXAMPLE_SHARD', detail, options);
  }
}

const manifestSchema = z.object({
  format_version: z.literal(EXAMPLE_FORMAT_VERSION),
  teacher: z.object({
    provider: z.string().min(1),
    model: z.string().min(1),
    /** A content digest of the teacher's weights where the provider gives one (Ollama does). */
    digest: z.string().nullable(),
  }),
  /** The temperature of the stored logprobs' distribution (1: the model's own). */
  temperature: z.number().positive(),
  /** The temperature the responses were sampled at (0: greedy), for provenance. */
  sampling_temperature: z.number().nonnegative().optional(),
  /** Soft labels per response token; 0 means the shard holds none (sequence-level KD only). */
  k: z.number().int().nonnegative(),
  /** How the mass outside the top k is treated: renormalized over the k ids, or a tail bucket 1 - sum(p_k). */
  tail: z.enum(['renormalize', 'bucket']),
  tokenizer_hash: z.string().min(1),
  vocab_size: z.number().int().positive(),
});

export type ExampleManifest = z.infer<typeof manifestSchema>;

/** Teacher top-k per response token, row-major [T, k]. */
export interface SoftLabels {
  ids: Int32Array;
  logprobs: Float32Array;
}

export interface ExampleRow {
  promptIds: Int32Array;
  responseIds: Int32Array;
  softLabels?: SoftLabels;
  /** Teacher logprob of each sampled response token. */
  sampledLogprob?: Float32Array;
  /** Where the example came from, e.g. the dataset file and line. */
  source: string;
  /** The key of the teacher request that produced it, for resuming and de-duplication. */
  requestKey: string;
}

/** What a writer may pass: any array-like of numbers where the reader returns typed arrays. */
export interface ExampleRowInput {
  promptIds: ArrayLike<number>;
  responseIds: ArrayLike<number>;
  softLabels?: { ids: ArrayLike<number>; logprobs: ArrayLike<number> };
  sampledLogprob?: ArrayLike<number>;
  source: string;
  requestKey: string;
}

export interface ExampleShard {
  manifest: ExampleManifest;
  rows: ExampleRow[];
}

export async function writeExampleShard(
  path: string,
  rows: readonly ExampleRowInput[],
  manifest: ExampleManifest,
): Promise<void> {
  const checked = validateManifest(manifest, path);
  rows.forEach((row, index) => validateRow(row, checked, `${path}: row ${index}`));
  await writeFileAtomic(path, tableToIPC(buildTable(rows, checked), 'file'));
}

export async function readExampleShard(path: string): Promise<ExampleShard> {
  const table = openTable(path, await readBytes(path));
  const manifest = readManifest(table, path);
  const rows = readRows(table, manifest, path);
  rows.forEach((row, index) => validateRow(row, manifest, `${path}: row ${index}`));
  return { manifest, rows };
}

/**
 * Refuses soft labels the student cannot learn from: they index the teacher's vocabulary, so both sides
 * must share a tokenizer. The student's embedding may have more rows than the tokenizer has ids (Qwen2
 * pads 151,936 to 152,064); fewer would leave teacher ids with no student logit.
 */
export function checkManifestFits(
  manifest: ExampleManifest,
  student: { vocabSize: number; tokenizerHash: string },
  file = 'example shard',
): void {
  const fallback = 'train on the teacher text alone (sequence-level KD) or use a student with the teacher tokenizer';
  if (manifest.tokenizer_hash !== student.tokenizerHash) {
    throw new ExampleShardError(
      file,
      `tokenizer_hash ${manifest.tokenizer_hash} does not match the student's tokenizer ${student.tokenizerHash}: ${fallback}`,
    );
  }
  if (manifest.vocab_size > student.vocabSize) {
    throw new ExampleShardError(
      file,
      `vocab_size ${manifest.vocab_size} is larger than the student's ${student.vocabSize}: ${fallback}`,
    );
  }
}

export function validateManifest(value: unknown, file: string): ExampleManifest {
  const version = (value as { format_version?: unknown } | null)?.format_version;
  if (version !== EXAMPLE_FORMAT_VERSION) {
    throw new ExampleShardError(
      file,
      `manifest key "format_version" is ${describeValue(version)}: this version reads format_version ${EXAMPLE_FORMAT_VERSION} only`,
    );
  }
  const parsed = manifestSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new ExampleShardError(file, `manifest key "${issue.path.join('.')}": ${issue.message}`);
}

function validateRow(row: ExampleRowInput, manifest: ExampleManifest, where: string): void {
  checkIds(row.promptIds, manifest.vocab_size, `${where}: prompt_ids`);
  checkIds(row.responseIds, manifest.vocab_size, `${where}: response_ids`);
  const tokens = row.responseIds.length;
  if (row.sampledLogprob) {
    checkLength(row.sampledLogprob, tokens, `${where}: sampled_logprob`, 'one per response token');
    checkLogprobs(row.sampledLogprob, `${where}: sampled_logprob`);
  }
  if (!row.softLabels) return;
  if (manifest.k === 0) throw new ExampleShardError(where, 'has soft labels but the manifest says k = 0');
  const expected = `response tokens (${tokens}) x k (${manifest.k})`;
  checkLength(row.softLabels.ids, tokens * manifest.k, `${where}: topk_ids`, expected);
  checkLength(row.softLabels.logprobs, tokens * manifest.k, `${where}: topk_logprobs`, expected);
  checkIds(row.softLabels.ids, manifest.vocab_size, `${where}: topk_ids`);
  checkLogprobs(row.softLabels.logprobs, `${where}: topk_logprobs`);
}

function checkIds(ids: ArrayLike<number>, vocabSize: number, where: string): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new ExampleShardError(where, `id ${id} at ${i} is outside the vocabulary [0, ${vocabSize})`);
    }
  }
}

/** Logprobs are <= 0 (a little float slack allowed); -Infinity is a legal "impossible". */
function checkLogprobs(values: ArrayLike<number>, where: string): void {
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (Number.isNaN(value) || value > 1e-4) {
      throw new ExampleShardError(where, `value ${value} at ${i} is not a log-probability (expected <= 0)`);
    }
  }
}

function checkLength(values: ArrayLike<number>, expected: number, where: string, what: string): void {
  if (values.length !== expected) {
    throw new ExampleShardError(where, `has ${values.length} values, expected ${expected} (${what})`);
  }
}

// ---- writing ----

function schemaFor(manifest: ExampleManifest): Schema {
  const fields: Field[] = [
    new Field('prompt_ids', listOf(new Int32()), false),
    new Field('response_ids', listOf(new Int32()), false),
  ];
  if (manifest.k > 0) {
    fields.push(new Field('topk_ids', listOf(new FixedSizeList(manifest.k, new Field('item', new Int32(), false))), true));
    fields.push(
      new Field('topk_logprobs', listOf(new FixedSizeList(manifest.k, new Field('item', new Float32(), false))), true),
    );
  }
  fields.push(
    new Field('sampled_logprob', listOf(new Float32()), true),
    new Field('source', new Utf8(), false),
    new Field('request_key', new Utf8(), false),
  );
  return new Schema(fields, new Map([[MANIFEST_METADATA_KEY, JSON.stringify(manifest)]]));
}

function listOf(item: DataType): List {
  return new List(new Field('item', item, false));
}

function buildTable(rows: readonly ExampleRowInput[], manifest: ExampleManifest): Table {
  const schema = schemaFor(manifest);
  const k = manifest.k;
  const columns: Record<string, Data> = {
    prompt_ids: listData(rows.map((r) => r.promptIds), new Int32(), 1),
    response_ids: listData(rows.map((r) => r.responseIds), new Int32(), 1),
    sampled_logprob: listData(rows.map((r) => r.sampledLogprob), new Float32(), 1),
    source: vectorFromArray(rows.map((r) => r.source), new Utf8()).data[0],
    request_key: vectorFromArray(rows.map((r) => r.requestKey), new Utf8()).data[0],
  };
  if (k > 0) {
    columns.topk_ids = listData(rows.map((r) => r.softLabels?.ids), new Int32(), k);
    columns.topk_logprobs = listData(rows.map((r) => r.softLabels?.logprobs), new Float32(), k);
  }
  const children = schema.fields.map((field) => columns[field.name]);
  const struct = makeData({ type: new Struct(schema.fields), length: rows.length, nullCount: 0, children });
  return new Table([new RecordBatch(schema, struct)]);
}

/**
 * A List column from flat per-row values; with `width` > 1 each list item is a FixedSizeList of `width`
 * (values then hold tokens x width numbers). An undefined row is null.
 */
function listData(rows: readonly (ArrayLike<number> | undefined)[], leafType: Int32 | Float32, width: number): Data {
  const itemType: DataType = width === 1 ? leafType : new FixedSizeList(width, new Field('item', leafType, false));
  const offsets = new Int32Array(rows.length + 1);
  const validity = new Uint8Array(Math.ceil(rows.length / 8));
  let total = 0;
  rows.forEach((row, i) => {
    if (row) {
      total += row.length;
      validity[i >> 3] |= 1 << (i & 7);
    }
    offsets[i + 1] = total / width;
  });
  const values = leafType instanceof Int32 ? new Int32Array(total) : new Float32Array(total);
  rows.forEach((row, i) => {
    if (row) values.set(row, offsets[i] * width);
  });
  const nullCount = rows.filter((row) => !row).length;
  const leaf: Data =
    leafType instanceof Int32
      ? makeData({ type: leafType, length: total, data: values as Int32Array })
      : makeData({ type: leafType, length: total, data: values as Float32Array });
  const item =
    width === 1
      ? leaf
      : makeData({
          type: itemType as FixedSizeList,
          length: total / width,
          nullCount: 0,
          child: leaf,
        });
  return makeData({
    type: listOf(itemType),
    length: rows.length,
    nullCount,
    nullBitmap: nullCount > 0 ? validity : undefined,
    valueOffsets: offsets,
    child: item,
  });
}

// ---- reading ----

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new ExampleShardError(path, `cannot read (${(error as Error).message})`, { cause: error });
  }
}

/**
 * Why bytes that start as an Arrow IPC file are not a whole one: the format ends with the same magic it
 * starts with, so a file cut short (a killed write, a full disk) is told apart from a damaged one.
 */
export function truncatedArrowFile(bytes: Uint8Array): string | null {
  const decode = (part: Uint8Array) => new TextDecoder().decode(part);
  if (decode(bytes.subarray(0, ARROW_MAGIC.length)) !== ARROW_MAGIC) return null;
  if (decode(bytes.subarray(bytes.length - ARROW_MAGIC.length)) === ARROW_MAGIC) return null;
  return `truncated: an Arrow IPC file ends with "${ARROW_MAGIC}", and this one stops after ${bytes.length} bytes without it (was its writing interrupted?)`;
}

function openTable(path: string, bytes: Uint8Array): Table {
  // apache-arrow reads bytes that are not Arrow at all as an empty table, so check the file magic first.
  if (new TextDecoder().decode(bytes.subarray(0, ARROW_MAGIC.length)) !== ARROW_MAGIC) {
    throw new ExampleShardError(path, `not an Arrow IPC file (expected it to start with "${ARROW_MAGIC}")`);
  }
  const truncated = truncatedArrowFile(bytes);
  if (truncated) throw new ExampleShardError(path, `${truncated}: run the generate stage again`);
  try {
    return tableFromIPC(bytes);
  } catch (error) {
    throw new ExampleShardError(path, `not an Arrow IPC file (${(error as Error).message})`, { cause: error });
  }
}

function readManifest(table: Table, path: string): ExampleManifest {
  const text = table.schema.metadata.get(MANIFEST_METADATA_KEY);
  if (text === undefined) {
    throw new ExampleShardError(path, `no "${MANIFEST_METADATA_KEY}" in the schema metadata: not an example shard`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ExampleShardError(path, `manifest is not JSON (${(error as Error).message})`, { cause: error });
  }
  return validateManifest(value, path);
}

function readRows(table: Table, manifest: ExampleManifest, path: string): ExampleRow[] {
  const k = manifest.k;
  const promptIds = listColumn(table, 'prompt_ids', 'Int32', 1, path);
  const responseIds = listColumn(table, 'response_ids', 'Int32', 1, path);
  const sampled = listColumn(table, 'sampled_logprob', 'Float32', 1, path);
  const topkIds = k > 0 ? listColumn(table, 'topk_ids', 'Int32', k, path) : [];
  const topkLogprobs = k > 0 ? listColumn(table, 'topk_logprobs', 'Float32', k, path) : [];
  const sources = stringColumn(table, 'source', path);
  const requestKeys = stringColumn(table, 'request_key', path);
  return sources.map((source, i) => {
    const row: ExampleRow = {
      promptIds: required(promptIds[i], 'prompt_ids', i, path) as Int32Array,
      responseIds: required(responseIds[i], 'response_ids', i, path) as Int32Array,
      source,
      requestKey: requestKeys[i],
    };
    if (sampled[i]) row.sampledLogprob = sampled[i] as Float32Array;
    if (topkIds[i] && topkLogprobs[i]) {
      row.softLabels = { ids: topkIds[i] as Int32Array, logprobs: topkLogprobs[i] as Float32Array };
    } else if (topkIds[i] || topkLogprobs[i]) {
      throw new ExampleShardError(path, `row ${i}: topk_ids and topk_logprobs must both be present or both null`);
    }
    return row;
  });
}

function required<T>(value: T | null, column: string, row: number, path: string): T {
  if (value === null) throw new ExampleShardError(path, `row ${row}: column "${column}" is null`);
  return value;
}

function columnOf(table: Table, name: string, path: string): Vector {
  const column = table.getChild(name);
  if (!column) throw new ExampleShardError(path, `missing column "${name}"`);
  return column;
}

/**
 * The rows of a List<leaf> (width 1) or List<FixedSizeList<leaf>[width]> column as flat copies of their
 * values; null rows are null. Reads the buffers directly instead of materializing a Vector per token.
 */
function listColumn(
  table: Table,
  name: string,
  leafType: LeafType,
  width: number,
  path: string,
): (Int32Array | Float32Array | null)[] {
  const column = columnOf(table, name, path);
  const out: (Int32Array | Float32Array | null)[] = [];
  for (const chunk of column.data) {
    const leaf = leafOf(chunk, leafType, width, name, path);
    for (let j = 0; j < chunk.length; j++) {
      if (!chunk.getValid(j)) {
        out.push(null);
        continue;
      }
      const start = chunk.valueOffsets[j] * width;
      const end = chunk.valueOffsets[j + 1] * width;
      out.push(leaf.values.slice(start, end));
    }
  }
  return out;
}

type LeafType = 'Int32' | 'Float32';

function isLeafType(type: DataType, leafType: LeafType): boolean {
  if (leafType === 'Int32') return DataType.isInt(type) && type.bitWidth === 32 && type.isSigned;
  return DataType.isFloat(type) && type.precision === Precision.SINGLE;
}

/** The values child of a list column; sliced children (offset != 0) never come out of an IPC file. */
function leafOf(chunk: Data, leafType: LeafType, width: number, name: string, path: string): Data {
  const item = DataType.isList(chunk.type) ? chunk.children[0] : undefined;
  const fixed = item && DataType.isFixedSizeList(item.type) && item.type.listSize === width;
  const leaf = width === 1 ? item : fixed ? item.children[0] : undefined;
  if (!item || !leaf || !isLeafType(leaf.type, leafType) || item.offset !== 0 || leaf.offset !== 0) {
    const expected = width === 1 ? `List<${leafType}>` : `List<FixedSizeList<${leafType}>[${width}]>`;
    throw new ExampleShardError(path, `column "${name}" has type ${chunk.type}, expected ${expected}`);
  }
  return leaf;
}

function stringColumn(table: Table, name: string, path: string): string[] {
  const column = columnOf(table, name, path);
  if (!DataType.isUtf8(column.type)) {
    throw new ExampleShardError(path, `column "${name}" has type ${column.type}, expected Utf8`);
  }
  return Array.from(column, (value, i) => required(value as string | null, name, i, path));
}
