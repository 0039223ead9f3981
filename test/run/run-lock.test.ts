import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunLock } from '../../src/run/run-lock.ts';

describe('RunLock', () => {
  it('refuses a second holder while the first lives, and frees the folder on release', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'lock-')), 'run');
    const lock = await RunLock.acquire(dir);
    await expect(RunLock.acquire(dir)).rejects.toThrow(`${dir} is in use by process ${process.pid}`);
    await lock.release();
    expect(existsSync(join(dir, '.lock'))).toBe(false);
    await (await RunLock.acquire(dir)).release();
  });

  it('takes over a lock left by a process that has died', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-'));
    const child = spawn(process.execPath, ['-e', '']);
    const deadPid = await new Promise<number>((resolve) => child.on('exit', () => resolve(child.pid!)));
    writeFileSync(join(dir, '.lock'), String(deadPid));
    const lock = await RunLock.acquire(dir);
    await lock.release();
  });
});
