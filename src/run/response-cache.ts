/**
 * Teacher responses of a run, keyed by request: an append-only JSONL file, one `{key, value}` per line.
 * Each response is appended as soon as it arrives, so a killed run loses at most the requests in flight;
 * a line torn by the kill (the last, with no newline) is cut off when the cache is next opened. Every other
 * valid line is kept, even after a corrupt one, which is skipped and reported by file:line.
 * Appending (not rewriting) is what makes this safe: a finished answer is never touched again.
 */
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import { canonicalJson } from '../util/canonical-json.ts';

/** sha256 (hex) of the canonical JSON of what decides a teacher's answer. */
export function requestKey(parts: unknown): string {
  return createHash('sha256').update(canonicalJson(parts)).digest('hex');
}

export class ResponseCache<T> {
  /** Appends run one after another: two large concurrent appends could interleave their bytes. */
  private appending: Promise<void> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private readonly entries: Map<string, T>,
    /** `file:line: why` for each corrupt line skipped when the cache was opened. */
    readonly skippedLines: readonly string[],
  ) {}

  /** Opens (or creates) the cache at `path`, dropping a torn last line and skipping corrupt ones. */
  static async open<T>(path: string): Promise<ResponseCache<T>> {
    await mkdir(dirname(path), { recursive: true });
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const entries = new Map<string, T>();
    const skipped: string[] = [];
    const lines = text.split('\n');
    const last = lines.pop()!; // '' when the file ends with a newline
    for (const [i, line] of lines.entries()) {
      const entry = parseLine<T>(line);
      if (entry) entries.set(entry.key, entry.value);
      else if (line !== '') skipped.push(`${path}:${i + 1}: not a cache entry ({"key": ..., "value": ...}), skipped`);
    }
    const tail = parseLine<T>(last);
    if (tail) {
      entries.set(tail.key, tail.value);
      await appendFile(path, '\n');
    } else if (last !== '') {
      await truncate(path, Buffer.byteLength(text) - Buffer.byteLength(last));
    }
    return new ResponseCache(path, entries, skipped);
  }

  get size(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  get(key: string): T | undefined {
    return this.entries.get(key);
  }

  async put(key: string, value: T): Promise<void> {
    if (this.entries.has(key)) return;
    this.entries.set(key, value);
    const line = `${JSON.stringify({ key, value })}\n`;
    this.appending = this.appending.then(() => appendFile(this.path, line));
    await this.appending;
  }
}

/** A complete cache line, or undefined for anything else (a torn or corrupt line, an empty one). */
function parseLine<T>(line: string): { key: string; value: T } | undefined {
  if (line === '') return undefined;
  try {
    const entry = JSON.parse(line) as { key?: unknown; value?: T };
    return typeof entry.key === 'string' && entry.value !== undefined ? { key: entry.key, value: entry.value } : undefined;
  } catch {
    return undefined;
  }
}
