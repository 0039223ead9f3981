/**
 * What `npm install slm-train` gets: an entry point that exists, only the files a user runs (no tests,
 * fixtures or runs), and dependencies that all accept the Node the package says it needs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

describe('the published package', () => {
  it('every dependency installed without --omit accepts the oldest Node of "engines"', () => {
    const oldest = semver.minVersion(manifest.engines.node)!.version;
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
    // npm skips optional packages whose engines do not match (platform binaries), so only the others count.
    const refusing = Object.entries(lock.packages as Record<string, { engines?: { node?: string }; optional?: boolean }>)
      .filter(([name, entry]) => name !== '' && !entry.optional && entry.engines?.node && !semver.satisfies(oldest, entry.engines.node))
      .map(([name, entry]) => `${name} wants node ${entry.engines!.node}`);
    expect(refusing).toEqual([]);
  });

  it('exports an entry that exists and carries no tests, fixtures or runs', () => {
    expect(existsSync(join(ROOT, manifest.exports['.'].default))).toBe(true);
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' }));
    const paths = (packed.files as { path: string }[]).map((file) => file.path);
    expect(paths).toEqual(expect.arrayContaining(['src/index.ts', 'bin/slm-train.js', 'recipes/quickstart.yaml', 'datasets/data/sums-train.jsonl', 'datasets/data/sums-test.jsonl']));
    expect(paths.filter((path) => /^(test|scratch|node_modules)\/|fixtures\/|^runs\/(?!README\.md$)/.test(path))).toEqual([]);
  });
});
