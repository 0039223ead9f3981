import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readJsonl } from '../../datasets/jsonl.ts';

function tempFile(content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'jsonl-')), 'data.jsonl');
  writeFileSync(path, content);
  return path;
}

async function collect(path: string) {
  const records = [];
  for await (const record of readJsonl(path)) records.push(record);
  return records;
}

describe('readJsonl', () => {
  it('yields each value with its 1-based line, skipping blank lines', async () => {
    const path = tempFile('{"a":1}\n\n   \n[2]\r\n"three"\n');
    expect(await collect(path)).toEqual([
      { line: 1, value: { a: 1 } },
      { line: 4, value: [2] },
      { line: 5, value: 'three' },
    ]);
  });

  it('ignores a UTF-8 byte order mark and a missing final newline', async () => {
    expect(await collect(tempFile('\uFEFF{"t":"é"}\n{"t":"x"}'))).toEqual([
      { line: 1, value: { t: 'é' } },
      { line: 2, value: { t: 'x' } },
    ]);
  });

  it('names file and line of invalid JSON, after yielding the lines before it', async () => {
    const path = tempFile('{"ok":true}\n\n{"broken": \n');
    const seen: number[] = [];
    await expect(async () => {
      for await (const { line } of readJsonl(path)) seen.push(line);
    }).rejects.toThrow(new RegExp(`^${path}:3: invalid JSON \\(`));
    expect(seen).toEqual([1]);
  });

  it('names a file it cannot read', async () => {
    await expect(collect('/nonexistent/data.jsonl')).rejects.toThrow(/^\/nonexistent\/data.jsonl: cannot read/);
  });
});
