import fc from 'fast-check';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsError, SafetensorsFile, writeSafetensors } from '../../src/formats/safetensors.ts';

/**
 * Corrupted copies of a valid file must either read cleanly (every tensor's data matching its shape) or fail
 * with a SafetensorsError: never another exception, a crash or a hang.
 */
let dir: string;
let valid: Uint8Array;
let headerEnd: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slm-safetensors-fuzz-'));
  const path = join(dir, 'valid.safetensors');
  await writeSafetensors(
    path,
    [
      { name: 'w', shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i / 7) },
      { name: 'b', shape: [4], data: Float32Array.from([1, -1, 2, -2]) },
      { name: 'e', shape: [0], data: new Float32Array(0) },
      { name: 'h', shape: [2, 2], data: Float32Array.from([0.5, 1e-5, 7e4, -3]) },
    ],
    { dtype: 'BF16', metadata: { format: 'pt' } },
  );
  valid = new Uint8Array(await readFile(path));
  headerEnd = 8 + Number(Buffer.from(valid).readBigUInt64LE(0));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readsCleanlyOrFailsCleanly(bytes: Uint8Array): Promise<boolean> {
  const path = join(dir, 'corrupt.safetensors');
  await writeFile(path, bytes);
  let file: SafetensorsFile | undefined;
  try {
    file = await SafetensorsFile.open(path);
    for (const name of file.names()) {
      const data = await file.read(name).catch((error: unknown) => {
        // a flipped dtype may name one that exists but cannot be converted
        if (error instanceof SafetensorsError && error.code === 'UNSUPPORTED_DTYPE') return undefined;
        throw error;
      });
      if (data && data.length !== file.info(name).shape.reduce((a, b) => a * b, 1)) return false;
    }
    return true;
  } catch (error) {
    if (error instanceof SafetensorsError) return true;
    throw error;
  } finally {
    await file?.close();
  }
}

const options = { seed: 20240611, numRuns: 150 };

describe('SafetensorsFile on corrupted input', () => {
  it('reads the uncorrupted file', async () => {
    const file = await SafetensorsFile.open(join(dir, 'valid.safetensors'));
    expect(file.names()).toEqual(['w', 'b', 'e', 'h']);
    await file.close();
  });

  it('survives truncation anywhere', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: valid.length - 1 }), async (length) => {
        return readsCleanlyOrFailsCleanly(valid.slice(0, length));
      }),
      options,
    );
  });

  it('survives bytes changed in the length prefix and header', async () => {
    const edit = fc.record({ at: fc.integer({ min: 0, max: 1 << 20 }), value: fc.integer({ min: 0, max: 255 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 4 }), async (edits) => {
        const corrupted = valid.slice();
        for (const { at, value } of edits) corrupted[at % headerEnd] = value;
        return readsCleanlyOrFailsCleanly(corrupted);
      }),
      options,
    );
  });

  it('survives printable characters written into the header JSON', async () => {
    const edit = fc.record({
      at: fc.integer({ min: 8, max: 1 << 20 }),
      char: fc.constantFrom(...'0123456789-.,:[]{}"eE F'),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 3 }), async (edits) => {
        const corrupted = valid.slice();
        for (const { at, char } of edits) corrupted[8 + (at % (headerEnd - 8))] = char.charCodeAt(0);
        return readsCleanlyOrFailsCleanly(corrupted);
      }),
      options,
    );
  });

  it('survives any u64 length prefix', async () => {
    const nearby = fc.integer({ min: -16, max: 16 }).map((d) => BigInt(Math.max(0, headerEnd - 8 + d)));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), nearby), async (length) => {
        const corrupted = valid.slice();
        new DataView(corrupted.buffer).setBigUint64(0, length, true);
        return readsCleanlyOrFailsCleanly(corrupted);
      }),
      options,
    );
  });
});
