/**
 * Writes that a crash cannot leave half done: readers see the old version or the complete new one.
 * Everything is built under a hidden temp name next to its target (same file system, so the final rename
 * is atomic), flushed to disk, then renamed into place. Missing parent folders are created.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pathExists } from './path-exists.ts';

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await writeFileAtomicWith(path, (handle) => handle.writeFile(data));
}

/** Pretty-printed JSON with a trailing newline. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Like `writeFileAtomic`, for content too large to hold at once: `write` fills the temp file through its
 * handle. If `write` throws, the temp file is removed and any file already at `path` is left as it was.
 */
export async function writeFileAtomicWith(path: string, write: (handle: FileHandle) => Promise<void>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
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
  await syncDirectory(dirname(path));
}

/**
 * Builds a folder with `build(tempDir)`, then puts it at `finalDir`. A folder already there is replaced
 * only once the new one is complete; if `build` throws, the old folder stays and the temp one is removed.
 * One window remains: a crash between the two renames leaves the old folder under a hidden `.old-` name
 * and none at `finalDir`.
 */
export async function replaceDirAtomic(finalDir: string, build: (tempDir: string) => Promise<void>): Promise<void> {
  await mkdir(dirname(finalDir), { recursive: true });
  const temp = siblingTempPath(finalDir, 'tmp');
  const old = siblingTempPath(finalDir, 'old');
  await mkdir(temp);
  try {
    await build(temp);
    await syncTree(temp);
    const hadOld = await renameIfExists(finalDir, old);
    try {
      await rename(temp, finalDir);
    } catch (error) {
      if (hadOld) await rename(old, finalDir);
      throw error;
    }
    await syncDirectory(dirname(finalDir));
    if (hadOld) await rm(old, { recursive: true, force: true });
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/** Deletes a folder, renaming it first so that a crash halfway through never leaves part of it under its name. */
export async function removeDirAtomic(dir: string): Promise<void> {
  const doomed = siblingTempPath(dir, 'removed');
  await rename(dir, doomed);
  await rm(doomed, { recursive: true, force: true });
}

const STALE_SIBLING = /^\.(.+)\.(tmp|old|removed)-\d+-[0-9a-f]{8}$/;

/**
 * Tidies what a killed process left in `dir` (no other writer may be at work there: hold the run lock):
 * half-built (`.tmp-`) and half-deleted (`.removed-`) folders are removed; a replaced folder parked under
 * `.old-` is put back when nothing took its name, else removed. Returns the names handled.
 */
export async function recoverStaleSiblings(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
  const handled: string[] = [];
  for (const name of names) {
    const match = STALE_SIBLING.exec(name);
    if (!match) continue;
    const [, original, kind] = match;
    if (kind === 'old' && !(await pathExists(join(dir, original)))) {
      await rename(join(dir, name), join(dir, original));
    } else {
      await rm(join(dir, name), { recursive: true, force: true });
    }
    handled.push(name);
  }
  return handled;
}

/** A hidden name next to `path`, on the same file system so that a rename onto `path` is atomic. */
function siblingTempPath(path: string, kind: string): string {
  return join(dirname(path), `.${basename(path)}.${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

async function renameIfExists(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Flushes every file and folder under `dir`, so the rename that publishes it cannot outrun its content. */
async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await syncTree(path);
    else if (entry.isFile()) await syncFile(path);
  }
  await syncDirectory(dir);
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a rename or new entry in `dir` durable. Windows cannot open folders for this; it is skipped there. */
async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  await syncFile(dir);
}
