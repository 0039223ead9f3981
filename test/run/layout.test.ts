import { mkdtempSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkpointDirName, checkpointStep, latestCheckpoint, listCheckpoints, runPaths } from '../../src/run/layout.ts';

describe('runPaths', () => {
  it('lays the run out under <output_dir>/<name>', () => {
    const paths = runPaths('/out', 'tiny');
    expect(paths).toMatchObject({
      root: '/out/tiny',
      recipe: '/out/tiny/recipe.yaml',
      metrics: '/out/tiny/metrics.jsonl',
      checkpoints: '/out/tiny/checkpoints',
      final: '/out/tiny/final',
    });
    expect(paths.checkpoint(100)).toBe('/out/tiny/checkpoints/step-000100');
  });
});

describe('checkpoint names', () => {
  it('zero-pads steps so that names sort by step, and parses them back', () => {
    expect(checkpointDirName(0)).toBe('step-000000');
    expect(checkpointDirName(1234567)).toBe('step-1234567');
    for (const step of [0, 7, 100, 999999, 1234567]) expect(checkpointStep(checkpointDirName(step))).toBe(step);
    const names = [5, 40, 300, 2000].map(checkpointDirName);
    expect([...names].sort()).toEqual(names);
  });

  it('rejects steps that are not whole and non-negative, and names that are not checkpoints', () => {
    expect(() => checkpointDirName(-1)).toThrow(RangeError);
    expect(() => checkpointDirName(1.5)).toThrow('got 1.5');
    for (const name of ['step-100', '.step-000100.tmp-1-ab', 'step-000100.old', 'final']) {
      expect(checkpointStep(name)).toBeUndefined();
    }
  });
});

describe('latestCheckpoint', () => {
  it('is undefined before any checkpoint exists', async () => {
    const root = mkdtempSync(join(tmpdir(), 'run-'));
    expect(await latestCheckpoint(root)).toBeUndefined();
  });

  it('picks the highest complete step, numerically, ignoring temp folders and files', async () => {
    const root = mkdtempSync(join(tmpdir(), 'run-'));
    const paths = runPaths(root, '.');
    for (const step of [900, 100, 1000000]) await mkdir(paths.checkpoint(step), { recursive: true });
    await mkdir(join(paths.checkpoints, `.${checkpointDirName(2000000)}.tmp-1-ab`));
    await writeFile(join(paths.checkpoints, checkpointDirName(3000000)), 'a file, not a folder');
    expect((await listCheckpoints(paths.root)).map((c) => c.step)).toEqual([100, 900, 1000000]);
    expect(await latestCheckpoint(paths.root)).toEqual({ step: 1000000, path: paths.checkpoint(1000000) });
  });
});
