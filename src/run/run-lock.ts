import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SlmError } from '../util/errors.ts';

/**
 * Keeps two processes from training into the same run folder. A pid file rather than an mtime lease
 * (proper-lockfile and the like): a training step can block the event loop longer than any lease, and
 * a dead owner is recognised at once by its pid.
 */
export class RunLock {
  private constructor(private readonly path: string) {}

  static async acquire(runDir: string): Promise<RunLock> {
    await mkdir(runDir, { recursive: true });
    const path = join(runDir, '.lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const file = await open(path, 'wx');
        await file.writeFile(String(process.pid));
        await file.close();
        return new RunLock(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
        if (isAlive(owner)) {
          throw new SlmError(`${runDir} is in use by process ${owner}; wait for it or stop it first`, { code: 'ERR_RUN_LOCKED' });
        }
        await rm(path, { force: true }); // left by a process that died
      }
    }
    throw new SlmError(`${runDir}: could not take ${path}`, { code: 'ERR_RUN_LOCKED' });
  }

  async release(): Promise<void> {
    await rm(this.path, { force: true });
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
