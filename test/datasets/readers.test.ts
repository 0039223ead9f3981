import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Field, Int32, Int64, List, Table, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatasetError } from '../../datasets/errors.ts';
import { formatFromExtension, readRecords, recordPosition } from '../../datasets/readers.ts';
import type { DatasetRecord } from '../../datasets/readers.ts';
import { minimalParquet } from './minimal-parquet.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'readers-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect(records: AsyncIterable<DatasetRecord>): Promise<DatasetRecord[]> {
  const out: DatasetRecord[] = [];
  for await (const record of records) out.push(record);
  return out;
}

async function fixture(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

describe('readRecords: JSONL', () => {
  it('yields objects with their line numbers, skipping blank lines', async () => {
    const path = await fixture('d.jsonl', '{"q":"a","n":1}\n\n{"q":"b","n":2}\n');
    expect(await collect(readRecords(path))).toEqual([
      { line: 1, value: { q: 'a', n: 1 } },
      { line: 3, value: { q: 'b', n: 2 } },
    ]);
  });

  it('refuses a line that is not an object, naming file:line', async () => {
    const path = await fixture('d.jsonl', '{"q":"a"}\n[1,2]\n');
    await expect(collect(readRecords(path))).rejects.toThrow(/d\.jsonl:2: expected a JSON object, got array/);
  });
});

describe('readRecords: CSV', () => {
  it('reads a header row, quoted commas and newlines, a BOM; values stay strings; lines are where records start', async () => {
    const path = await fixture('d.csv', '\uFEFFquestion,answer\n"1, 2, 3?","x\ny\nz"\n\n007,"say ""hi"""\n');
    expect(await collect(readRecords(path))).toEqual([
      { line: 2, value: { question: '1, 2, 3?', answer: 'x\ny\nz' } },
      { line: 6, value: { question: '007', answer: 'say "hi"' } },
    ]);
  });

  it('reads CRLF line ends', async () => {
    const path = await fixture('d.csv', 'q,a\r\n1,2\r\n\r\n3,4\r\n');
    expect(await collect(readRecords(path))).toEqual([
      { line: 2, value: { q: '1', a: '2' } },
      { line: 4, value: { q: '3', a: '4' } },
    ]);
  });

  it('reports a row with the wrong number of fields at file:line', async () => {
    const path = await fixture('bad.csv', 'a,b\n1,2\n3\n');
    const error = await collect(readRecords(path)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as Error).message).toMatch(/bad\.csv:3: invalid CSV/);
  });

  it('reports an unclosed quote', async () => {
    const path = await fixture('open.csv', 'a,b\n1,"never closed\n');
    await expect(collect(readRecords(path))).rejects.toThrow(/open\.csv(:\d+)?: invalid CSV/);
  });
});

describe('readRecords: CSV without a header', () => {
  it('keys cells by position, takes the first row as data, keeps rows of any width, numbers lines where rows start', async () => {
    const path = await fixture('h.csv', '\uFEFFquestion,answer\n"a\nb, c",x,\n\n\n7\n"say ""hi""",y\n');
    expect(await collect(readRecords(path, { csvHeader: false }))).toEqual([
      { line: 1, value: { '0': 'question', '1': 'answer' } },
      { line: 2, value: { '0': 'a\nb, c', '1': 'x', '2': '' } },
      { line: 6, value: { '0': '7' } },
      { line: 7, value: { '0': 'say "hi"', '1': 'y' } },
    ]);
  });

  it('still reports malformed CSV at file:line', async () => {
    const path = await fixture('bad.csv', '1,2\n3,"4"x\n');
    const error = await collect(readRecords(path, { csvHeader: false })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as Error).message).toMatch(/bad\.csv:2: invalid CSV/);
  });
});

describe('readRecords: Parquet', () => {
  it('reads int32, double and UTF-8 columns with row indices', async () => {
    const path = await fixture(
      'd.parquet',
      minimalParquet([
        { name: 'id', type: 'int32', values: [7, -1, 2_000_000_000] },
        { name: 'question', type: 'utf8', values: ['What is 2+2?', 'héllo, wörld', ''] },
        { name: 'score', type: 'double', values: [0.25, -1e300, 3] },
      ]),
    );
    expect(await collect(readRecords(path))).toEqual([
      { row: 0, value: { id: 7, question: 'What is 2+2?', score: 0.25 } },
      { row: 1, value: { id: -1, question: 'héllo, wörld', score: -1e300 } },
      { row: 2, value: { id: 2_000_000_000, question: '', score: 3 } },
    ]);
  });

  it('refuses a file that is not Parquet', async () => {
    const path = await fixture('x.parquet', 'not parquet at all');
    await expect(collect(readRecords(path))).rejects.toThrow(/x\.parquet: not a Parquet file/);
  });
});

describe('readRecords: Arrow IPC', () => {
  it('reads strings, lists and 64-bit integers as plain values', async () => {
    const table = new Table({
      prompt: vectorFromArray(['a', 'b'], new Utf8()),
      ids: vectorFromArray([[1, 2], []], new List(new Field('item', new Int32()))),
      count: vectorFromArray([10n, -3n], new Int64()),
    });
    const path = await fixture('d.arrow', tableToIPC(table, 'file'));
    expect(await collect(readRecords(path))).toEqual([
      { row: 0, value: { prompt: 'a', ids: [1, 2], count: 10 } },
      { row: 1, value: { prompt: 'b', ids: [], count: -3 } },
    ]);
  });

  it('reads the stream format under an explicit format', async () => {
    const table = new Table({ q: vectorFromArray(['x'], new Utf8()) });
    const path = await fixture('d.bin', tableToIPC(table, 'stream'));
    expect(await collect(readRecords(path, { format: 'arrow' }))).toEqual([{ row: 0, value: { q: 'x' } }]);
  });

  it('refuses a file that is not Arrow', async () => {
    const path = await fixture('x.arrow', 'hello');
    await expect(collect(readRecords(path))).rejects.toThrow(/x\.arrow: not an Arrow IPC file/);
  });
});

describe('formats and positions', () => {
  it('picks the format from the extension and refuses an unknown one', () => {
    expect(formatFromExtension('a/b.JSONL')).toBe('jsonl');
    expect(formatFromExtension('b.feather')).toBe('arrow');
    expect(() => formatFromExtension('data.txt')).toThrow(/data\.txt: cannot tell the format from extension "\.txt"/);
  });

  it('names a record by line or row', () => {
    expect(recordPosition('d.csv', { line: 4 })).toBe('d.csv:4');
    expect(recordPosition('d.parquet', { row: 0 })).toBe('d.parquet: row 0');
  });
});

describe('missing files', () => {
  it.each(['jsonl', 'csv', 'parquet', 'arrow'])('names a missing .%s file', async (extension) => {
    const path = join(dir, `missing.${extension}`);
    await expect(collect(readRecords(path))).rejects.toThrow(new RegExp(`missing\\.${extension}: cannot read`));
  });
});
