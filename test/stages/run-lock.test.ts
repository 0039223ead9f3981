import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunLock } from '../../src/stages/run-lock.ts';

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

  it('takes over a lock whose pid now belongs to another process, and never one taken on another host', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-'));
    // This very process, but started at another time: the pid was reused.
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: process.pid, started: '1', host: hostname() }));
    await (await RunLock.acquire(dir)).release();
    expect(existsSync(join(dir, '.lock'))).toBe(false);

    const lock = await RunLock.acquire(dir);
    const written = JSON.parse(readFileSync(join(dir, '.lock'), 'utf8'));
    expect(written).toMatchObject({ pid: process.pid, host: hostname() });
    expect(written.started).toMatch(/^\d+$/);
    await expect(RunLock.acquire(dir)).rejects.toThrow(`is in use by process ${process.pid}`);
    await lock.release();

    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: 1, started: '1', host: 'elsewhere' }));
    await expect(RunLock.acquire(dir)).rejects.toThrow(/in use by process 1 on host elsewhere; if that run is over, delete .*\.lock/);
  });
});
