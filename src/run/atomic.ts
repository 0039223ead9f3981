/**
 * Writes that a crash cannot leave half done: readers see the old version or the complete new one.
 * Everything is built under a temp name next to its target (same file system, so the final rename is
 * atomic), flushed to disk, then renamed into place. Missing parent folders are created.
 */
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { siblingTempPath, writeFileAtomic as writeThroughHandleAtomic } from '../formats/atomic-file.ts';

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeThroughHandleAtomic(path, (handle) => handle.writeFile(data));
  await syncDirectory(dirname(path));
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
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
