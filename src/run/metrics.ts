/**
 * metrics.jsonl: one JSON object per line, each with the optimizer `step` it belongs to, in step order.
 * Each append is one write to the OS, so a crash loses at most the line being written; opening the log
 * drops such a torn tail. On resume, `truncateAfterStep` removes the lines of steps the resumed
 * checkpoint does not have, so the file never holds a step twice.
 *
 * Synchronous on purpose: lines reach the file in call order, and a line is written when append returns.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export interface MetricsRecord {
  step: number;
  [name: string]: number | string | boolean | null;
}

export class MetricsLog {
  private constructor(
    readonly path: string,
    private fd: number | undefined,
    /** Byte offset just past each line, with that line's step. */
    private readonly lineEnds: { step: number; end: number }[],
  ) {}

  /** Opens (creating it and its folder if needed) and repairs a torn last line. */
  static open(path: string): MetricsLog {
    mkdirSync(dirname(path), { recursive: true });
    const fd = openSync(path, 'a+');
    try {
      const { records, validBytes } = parseMetrics(readFileSync(fd), path);
      const outOfOrder = records.findIndex((r, i) => i > 0 && r.record.step < records[i - 1].record.step);
      if (outOfOrder !== -1) {
        throw new Error(`${path}:${outOfOrder + 1}: step ${records[outOfOrder].record.step} after a later step`);
      }
      ftruncateSync(fd, validBytes);
      return new MetricsLog(path, fd, records.map(({ record, end }) => ({ step: record.step, end })));
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** The step of the last line, or undefined for an empty log. */
  get lastStep(): number | undefined {
    return this.lineEnds.at(-1)?.step;
  }

  append(record: MetricsRecord): void {
    const fd = this.openFd();
    if (!Number.isInteger(record.step) || record.step < 0) {
      throw new RangeError(`${this.path}: step must be an integer >= 0, got ${record.step}`);
    }
    if (this.lastStep !== undefined && record.step < this.lastStep) {
      throw new RangeError(`${this.path}: step ${record.step} comes after step ${this.lastStep}; steps must not go back`);
    }
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    writeSync(fd, line);
    const start = this.lineEnds.at(-1)?.end ?? 0;
    this.lineEnds.push({ step: record.step, end: start + line.length });
  }

  /** Removes every line whose step is greater than `step`. */
  truncateAfterStep(step: number): void {
    const fd = this.openFd();
    // Lines are in step order, so the ones to drop are a suffix: cutting the file there is one atomic call.
    const keep = this.lineEnds.findIndex((line) => line.step > step);
    if (keep === -1) return;
    ftruncateSync(fd, keep === 0 ? 0 : this.lineEnds[keep - 1].end);
    this.lineEnds.length = keep;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private openFd(): number {
    if (this.fd === undefined) throw new Error(`${this.path}: metrics log is closed`);
    return this.fd;
  }
}

/** All records of a metrics file; an unfinished last line (a run still writing, or a crash) is ignored. */
export function readMetrics(path: string): MetricsRecord[] {
  return parseMetrics(readFileSync(path), path).records.map(({ record }) => record);
}

/**
 * Parses complete lines. Trailing lines that are torn or unparsable (a crash mid-write, or the zero bytes
 * some file systems leave after power loss) end the valid part; a bad line followed by good ones is
 * corruption and throws, naming the line.
 */
function parseMetrics(bytes: Buffer, path: string) {
  const records: { record: MetricsRecord; end: number }[] = [];
  let validBytes = 0;
  let pendingError: Error | undefined;
  let start = 0;
  for (let lineNumber = 1; ; lineNumber++) {
    const newline = bytes.indexOf(0x0a, start);
    if (newline === -1) break;
    const record = parseLine(bytes.subarray(start, newline).toString('utf8'));
    start = newline + 1;
    if (record === undefined) {
      pendingError ??= new Error(`${path}:${lineNumber}: not a metrics record (a JSON object with an integer step)`);
      continue;
    }
    if (pendingError) throw pendingError;
    validBytes = start;
    records.push({ record, end: start });
  }
  return { records, validBytes };
}

function parseLine(line: string): MetricsRecord | undefined {
  try {
    const value: unknown = JSON.parse(line);
    const isRecord =
      typeof value === 'object' && value !== null && Number.isInteger((value as { step?: unknown }).step);
    return isRecord ? (value as MetricsRecord) : undefined;
  } catch {
    return undefined;
  }
}
