import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SlmError } from '../util/errors.ts';

/** Who holds a run folder: enough to tell a live owner from a dead one whose pid was reused. */
interface LockOwner {
  pid: number;
  /** The process's start time as the OS keeps it (Linux: /proc/<pid>/stat starttime); null where unknown. */
  started: string | null;
  host: string;
}

/**
 * Keeps two processes from training into the same run folder. A pid file rather than an mtime lease
 * (proper-lockfile and the like): a training step can block the event loop longer than any lease, and
 * a dead owner is recognised at once by its pid, its start time (a pid the OS gave to a new process is
 * not the owner) and its host (a lock taken on another machine sharing the folder is never taken over).
 */
export class RunLock {
  private constructor(private readonly path: string) {}

  static async acquire(runDir: string): Promise<RunLock> {
    await mkdir(runDir, { recursive: true });
    const path = join(runDir, '.lock');
    const self: LockOwner = { pid: process.pid, started: await processStart(process.pid), host: hostname() };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const file = await open(path, 'wx');
        await file.writeFile(`${JSON.stringify(self)}\n`);
        await file.close();
        return new RunLock(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const owner = parseOwner(await readFile(path, 'utf8').catch(() => ''));
        if (owner && owner.host !== self.host) {
          throw new SlmError(
            `${runDir} is in use by process ${owner.pid} on host ${owner.host}; if that run is over, delete ${path}`,
            { code: 'ERR_RUN_LOCKED' },
          );
        }
        if (owner && (await isRunning(owner))) {
          throw new SlmError(`${runDir} is in use by process ${owner.pid}; wait for it or stop it first`, { code: 'ERR_RUN_LOCKED' });
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

/** The lock's owner; a bare pid (the format before owners had start times) reads as one of this host. */
function parseOwner(text: string): LockOwner | null {
  try {
    const value = JSON.parse(text) as Partial<LockOwner> | number;
    if (typeof value === 'number') return Number.isInteger(value) ? { pid: value, started: null, host: hostname() } : null;
    if (Number.isInteger(value?.pid) && typeof value.host === 'string') return { pid: value.pid!, started: value.started ?? null, host: value.host };
  } catch {
    // torn or foreign content: nobody we can recognise holds it
  }
  return null;
}

async function isRunning(owner: LockOwner): Promise<boolean> {
  if (!isAlive(owner.pid)) return false;
  if (owner.started === null) return true;
  const started = await processStart(owner.pid);
  return started === null || started === owner.started;
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

/** Field 22 of /proc/<pid>/stat (after the parenthesised command name, which may hold spaces); null off Linux. */
async function processStart(pid: number): Promise<string | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return null;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19] ?? null;
}
