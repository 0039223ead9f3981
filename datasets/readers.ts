/**
 * One reader for the tabular dataset files users bring: JSON Lines, CSV (with a header row, or without one
 * when asked), Parquet and Arrow IPC. Each yields plain records (column name -> JS value) with their
 * position, so errors further on can name `file:line` (text formats) or `file: row N` (columnar formats, 0-based).
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { tableFromIPC, Vector } from 'apache-arrow';
import type { Table } from 'apache-arrow';
import { CsvError, parse } from 'csv-parse';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { truncatedArrowFile } from '../src/formats/arrow-examples.ts';
import { DatasetError } from './errors.ts';
import { readJsonl } from './jsonl.ts';

export type RecordFormat = 'jsonl' | 'csv' | 'parquet' | 'arrow';

export interface DatasetRecord {
  /** 1-based line in the file (JSONL, CSV). */
  line?: number;
  /** 0-based row index (Parquet, Arrow). */
  row?: number;
  value: Record<string, unknown>;
}

const FORMAT_BY_EXTENSION: Record<string, RecordFormat> = {
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.csv': 'csv',
  '.parquet': 'parquet',
  '.arrow': 'arrow',
  '.feather': 'arrow',
  '.ipc': 'arrow',
};

export interface ReadRecordsOptions {
  /** Taken from the extension when absent. */
  format?: RecordFormat;
  /**
   * Whether a CSV's first row names its columns (default true). Without a header, records are keyed by
   * column position ("0", "1", ...) and rows may have any number of cells: the caller says what it expected.
   */
  csvHeader?: boolean;
}

export function readRecords(path: string, options: ReadRecordsOptions = {}): AsyncIterable<DatasetRecord> {
  const format = options.format ?? formatFromExtension(path);
  switch (format) {
    case 'jsonl':
      return readJsonlRecords(path);
    case 'csv':
      return readCsvRecords(path, options.csvHeader ?? true);
    case 'parquet':
      return readParquetRecords(path);
    case 'arrow':
      return readArrowRecords(path);
  }
}

/** `file:line` or `file: row N`, for messages about a record. */
export function recordPosition(path: string, record: Pick<DatasetRecord, 'line' | 'row'>): string {
  if (record.line !== undefined) return `${path}:${record.line}`;
  return record.row !== undefined ? `${path}: row ${record.row}` : path;
}

export function formatFromExtension(path: string): RecordFormat {
  const extension = extname(path).toLowerCase();
  const format = FORMAT_BY_EXTENSION[extension];
  if (!format) {
    const known = Object.keys(FORMAT_BY_EXTENSION).join(', ');
    throw new DatasetError(`${path}: cannot tell the format from extension "${extension}" (expected one of ${known}, or pass format)`);
  }
  return format;
}

async function* readJsonlRecords(path: string): AsyncIterable<DatasetRecord> {
  for await (const { line, value } of readJsonl(path)) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new DatasetError(`${path}:${line}: expected a JSON object, got ${Array.isArray(value) ? 'array' : String(value)}`);
    }
    yield { line, value: value as Record<string, unknown> };
  }
}

/** CSV values stay strings: a dataset of texts should not have "007" turned into 7. */
async function* readCsvRecords(path: string, header: boolean): AsyncIterable<DatasetRecord> {
  const source = createReadStream(path);
  const parser = parse({ columns: header, relax_column_count: !header, bom: true, skip_empty_lines: true, info: true, raw: true });
  // pipe() does not forward a read error (a missing file); without this the loop would wait forever.
  source.on('error', (error) => parser.destroy(error)).pipe(parser);
  try {
    for await (const { info, raw, record } of parser as AsyncIterable<CsvRecord>) {
      // Spreading a headerless row's cells keys them by position.
      yield { line: firstLine(info.lines, raw), value: Array.isArray(record) ? { ...record } : record };
    }
  } catch (error) {
    throw csvError(error, path);
  } finally {
    // Closes the file when the caller stops early (e.g. after peeking at the first row).
    source.destroy();
  }
}

interface CsvRecord {
  info: { lines: number };
  raw: string;
  /** An array when the file has no header row. */
  record: Record<string, string> | string[];
}

/**
 * csv-parse counts lines to the end of a record; a quoted field may span several, and `raw` starts with
 * the empty lines skipped before it. The record's first line is what a user looks for in an editor.
 * csv-parse counts a CRLF inside a quoted field as two lines, so after one the numbers run high.
 */
function firstLine(lastLine: number, raw: string): number {
  const body = raw.replace(/^(\r?\n)+/, '').replace(/\r?\n$/, '');
  return lastLine - (body.match(/\n/g)?.length ?? 0);
}

function csvError(error: unknown, path: string): DatasetError {
  if (error instanceof CsvError) {
    const line = typeof error.lines === 'number' ? `:${error.lines}` : '';
    return new DatasetError(`${path}${line}: invalid CSV (${error.message})`);
  }
  const message = (error as Error).message;
  return new DatasetError(`${path}: cannot read (${message})`);
}

/** One row group at a time, so a large file is never decoded whole. */
async function* readParquetRecords(path: string): AsyncIterable<DatasetRecord> {
  const file = await openParquet(path);
  let metadata;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (error) {
    throw new DatasetError(`${path}: not a Parquet file (${(error as Error).message})`);
  }
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    const rows = await parquetReadObjects({ file, metadata, rowStart, rowEnd }).catch((error: unknown) => {
      throw new DatasetError(`${path}: rows ${rowStart}..${rowEnd - 1}: cannot decode (${(error as Error).message})`);
    });
    for (const [i, value] of rows.entries()) yield { row: rowStart + i, value: plainRecord(value) };
    rowStart = rowEnd;
  }
}

async function openParquet(path: string) {
  try {
    return await asyncBufferFromFile(path);
  } catch (error) {
    throw new DatasetError(`${path}: cannot read (${(error as Error).message})`);
  }
}

async function* readArrowRecords(path: string): AsyncIterable<DatasetRecord> {
  const table = await openArrow(path);
  let row = 0;
  for (const batch of table.batches) {
    for (let i = 0; i < batch.numRows; i++) {
      const value: Record<string, unknown> = {};
      for (const field of batch.schema.fields) value[field.name] = plainValue(batch.getChild(field.name)?.get(i));
      yield { row: row++, value };
    }
  }
}

async function openArrow(path: string): Promise<Table> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new DatasetError(`${path}: cannot read (${(error as Error).message})`);
  }
  const truncated = truncatedArrowFile(bytes);
  if (truncated) throw new DatasetError(`${path}: ${truncated}`);
  try {
    const table = tableFromIPC(bytes);
    // apache-arrow reads bytes that are not Arrow as an empty table; a real file always has a schema.
    if (table.schema.fields.length === 0) throw new Error('no columns');
    return table;
  } catch (error) {
    throw new DatasetError(`${path}: not an Arrow IPC file or stream (${(error as Error).message})`);
  }
}

function plainRecord(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, plainValue(v)]));
}

/**
 * Arrow vectors and struct rows become arrays and objects; 64-bit integers become numbers where that is
 * exact, so records look the same whichever format they came from.
 */
function plainValue(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value;
  if (value instanceof Vector) return Array.from(value, plainValue);
  if (Array.isArray(value)) return value.map(plainValue);
  if (value !== null && typeof value === 'object' && !(value instanceof Date) && !ArrayBuffer.isView(value)) {
    const object = 'toJSON' in value && typeof value.toJSON === 'function' ? (value.toJSON() as object) : value;
    return plainRecord(object as Record<string, unknown>);
  }
  return value;
}
