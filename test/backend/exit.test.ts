import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const FIXTURE = fileURLToPath(new URL('./fixtures/threaded-wasm-exit.ts', import.meta.url));
/** Only a guard against a hang; the script needs about a second. */
const HANG_GUARD_MS = 60_000;

describe('a process using the threaded wasm backend', () => {
  it('exits on its own when its work is done', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', FIXTURE], { encoding: 'utf8', timeout: HANG_GUARD_MS });

    expect(run.signal).toBeNull();
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout.trim())).toEqual({ threads: 2, corner: 64, batchedCorner: 64 });
  });
});
