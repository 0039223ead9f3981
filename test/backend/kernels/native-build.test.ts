import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const NATIVE = join(import.meta.dirname, '../../../src/backend/kernels/native');
const KERNELS = ['rows-product', 'batch-product'];
const clang = spawnSync('clang-14', ['--version']).status === 0;

describe('the committed native modules', () => {
  it.skipIf(!clang)('are what build.sh makes from their sources (where clang-14 is installed)', () => {
    const out = mkdtempSync(join(tmpdir(), 'native-build-'));
    const sources = [...KERNELS.map((kernel) => `${NATIVE}/${kernel}.c`), `${NATIVE}/build.sh`];
    execFileSync('bash', ['-c', `cp ${sources.join(' ')} ${out}/ && ${out}/build.sh`]);
    for (const file of KERNELS.flatMap((kernel) => [`${kernel}.wasm`, `${kernel}-shared.wasm`])) {
      expect(readFileSync(join(out, file)).equals(readFileSync(join(NATIVE, file))), file).toBe(true);
    }
  });
});
