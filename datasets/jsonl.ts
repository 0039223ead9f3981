/** Streaming JSON Lines reader: one JSON value per line, blank lines skipped, errors at `file:line`. */
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { DatasetError } from './errors.ts';

export interface JsonlRecord {
  /** 1-based line number in the file. */
  line: number;
  value: unknown;
}

export async function* readJsonl(path: string): AsyncIterable<JsonlRecord> {
  try {
    await access(path);
  } catch (error) {
    throw new DatasetError(`${path}: cannot read (${(error as Error).message})`);
  }
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  for await (const raw of lines) {
    line++;
    const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw;
    if (text.trim() === '') continue;
    yield { line, value: parseLine(text, path, line) };
  }
}

function parseLine(text: string, path: string, line: number): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new DatasetError(`${path}:${line}: invalid JSON (${(error as Error).message})`);
  }
}
