import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { recoverStaleSiblings, removeDirAtomic, replaceDirAtomic, writeFileAtomic, writeFileAtomicWith, writeJsonAtomic } from '../../src/util/atomic.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'atomic-'));
});

describe('writeFileAtomic', () => {
  it('creates, then replaces, a file and leaves no temp file', async () => {
    const path = join(dir, 'sub', 'a.txt');
    await writeFileAtomic(path, 'first');
    await writeFileAtomic(path, new Uint8Array([104, 105]));
    expect(readFileSync(path, 'utf8')).toBe('hi');
    expect(readdirSync(join(dir, 'sub'))).toEqual(['a.txt']);
  });

  it('writes JSON with a trailing newline', async () => {
    const path = join(dir, 'state.json');
    await writeJsonAtomic(path, { step: 3, loss: [1.5] });
    expect(readFileSync(path, 'utf8')).toBe('{\n  "step": 3,\n  "loss": [\n    1.5\n  ]\n}\n');
  });
});

describe('writeFileAtomicWith', () => {
  it('writes what the writer puts through the handle, creating parents', async () => {
    const path = join(dir, 'sub', 'b.bin');
    await writeFileAtomicWith(path, async (handle) => {
      await handle.write(new Uint8Array([3, 4]), 0, 2, 2);
      await handle.write(new Uint8Array([1, 2]), 0, 2, 0);
    });
    expect([...readFileSync(path)]).toEqual([1, 2, 3, 4]);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['b.bin']);
  });

  it('keeps the old file and removes the temp file when the writer fails', async () => {
    const path = join(dir, 'c.txt');
    await writeFileAtomic(path, 'old');
    const failing = writeFileAtomicWith(path, async (handle) => {
      await handle.writeFile('half');
      throw new Error('disk full');
    });
    await expect(failing).rejects.toThrow('disk full');
    expect(readFileSync(path, 'utf8')).toBe('old');
    expect(readdirSync(dir)).toEqual(['c.txt']);
  });
});

describe('replaceDirAtomic', () => {
  const final = () => join(dir, 'checkpoints', 'step-000100');

  it('builds a new folder in place, creating parents', async () => {
    await replaceDirAtomic(final(), async (temp) => {
      expect(temp).not.toBe(final());
      await writeFile(join(temp, 'weights.bin'), 'new');
      await mkdir(join(temp, 'nested'));
      await writeFile(join(temp, 'nested', 'x'), 'y');
    });
    expect(readFileSync(join(final(), 'weights.bin'), 'utf8')).toBe('new');
    expect(readFileSync(join(final(), 'nested', 'x'), 'utf8')).toBe('y');
    expect(readdirSync(join(dir, 'checkpoints'))).toEqual(['step-000100']);
  });

  it('replaces an existing folder whole: no file of the old one survives', async () => {
    await replaceDirAtomic(final(), async (temp) => {
      await writeFile(join(temp, 'old-only'), 'old');
      await writeFile(join(temp, 'weights.bin'), 'old');
    });
    await replaceDirAtomic(final(), (temp) => writeFile(join(temp, 'weights.bin'), 'new'));
    expect(readdirSync(final())).toEqual(['weights.bin']);
    expect(readFileSync(join(final(), 'weights.bin'), 'utf8')).toBe('new');
    expect(readdirSync(join(dir, 'checkpoints'))).toEqual(['step-000100']);
  });

  it('keeps the old folder intact and removes the temp one when the build fails', async () => {
    await replaceDirAtomic(final(), (temp) => writeFile(join(temp, 'weights.bin'), 'old'));
    const failing = replaceDirAtomic(final(), async (temp) => {
      await writeFile(join(temp, 'weights.bin'), 'half');
      throw new Error('disk full');
    });
    await expect(failing).rejects.toThrow('disk full');
    expect(readFileSync(join(final(), 'weights.bin'), 'utf8')).toBe('old');
    expect(readdirSync(join(dir, 'checkpoints'))).toEqual(['step-000100']);
  });

  it('leaves nothing behind when the first build fails', async () => {
    await expect(replaceDirAtomic(final(), () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(readdirSync(join(dir, 'checkpoints'))).toEqual([]);
  });
});

describe('removeDirAtomic', () => {
  it('removes a folder and everything in it, leaving nothing beside it', async () => {
    const doomed = join(dir, 'step-1');
    await mkdir(join(doomed, 'nested'), { recursive: true });
    await writeFile(join(doomed, 'nested', 'x'), 'y');
    await mkdir(join(dir, 'step-2'));
    await removeDirAtomic(doomed);
    expect(readdirSync(dir)).toEqual(['step-2']);
  });

  it('fails on a folder that is not there', async () => {
    await expect(removeDirAtomic(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('recoverStaleSiblings', () => {
  it('removes half-built and half-deleted folders, puts back a parked folder nothing replaced, and leaves the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'atomic-stale-'));
    for (const name of ['.step-00000012.tmp-123-deadbeef', '.step-00000002.removed-7-0badf00d', '.final.old-9-01234567', '.step-00000004.old-9-89abcdef', 'step-00000004', '.hidden']) {
      await mkdir(join(dir, name));
      await writeFile(join(dir, name, 'file'), name);
    }
    const handled = await recoverStaleSiblings(dir);
    expect(handled.sort()).toEqual(['.final.old-9-01234567', '.step-00000002.removed-7-0badf00d', '.step-00000004.old-9-89abcdef', '.step-00000012.tmp-123-deadbeef']);
    expect(readdirSync(dir).sort()).toEqual(['.hidden', 'final', 'step-00000004']);
    expect(readFileSync(join(dir, 'final/file'), 'utf8')).toBe('.final.old-9-01234567');
    expect(readFileSync(join(dir, 'step-00000004/file'), 'utf8')).toBe('step-00000004');
    expect(await recoverStaleSiblings(join(dir, 'missing'))).toEqual([]);
  });
});
