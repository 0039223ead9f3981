import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A hidden name next to `path`, on the same file system so that a rename onto `path` is atomic. */
export function siblingTempPath(path: string, kind: string): string {
  return join(dirname(path), `.${basename(path)}.${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Writes a file so that readers see either the old content or the complete new one: `write` fills a temp
 * file next to `path`, which is flushed to disk and renamed over `path`. On failure the temp file is removed.
 */
export async function writeFileAtomic(path: string, write: (handle: FileHandle) => Promise<void>): Promise<void> {
  const temp = siblingTempPath(path, 'tmp');
  const handle = await open(temp, 'wx');
  try {
    try {
      await write(handle);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

export async function writeTextAtomic(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, (handle) => handle.writeFile(text, 'utf8'));
}

/** Writes all of `bytes` at `position`, looping over short writes and keeping each call under 2 GB. */
export async function writeAllAt(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  const maxChunk = 1 << 30;
  let done = 0;
  while (done < bytes.length) {
    const length = Math.min(maxChunk, bytes.length - done);
    const { bytesWritten } = await handle.write(bytes, done, length, position + done);
    done += bytesWritten;
  }
}
