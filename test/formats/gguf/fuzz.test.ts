import fc from 'fast-check';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgufError } from '../../../src/formats/gguf/gguf-error.ts';
import { GgufFile } from '../../../src/formats/gguf/reader.ts';
import { GgufWriter } from '../../../src/formats/gguf/writer.ts';
import type { GgufWritableType } from '../../../src/formats/gguf/writer.ts';
import type { HostTensor } from '../../../src/formats/safetensors.ts';
import { walkGguf } from './gguf-bytes.ts';
import type { Field } from './gguf-bytes.ts';

/**
 * Corrupted copies of a valid file must either read cleanly (every readable tensor coming back with as many
 * values as its shape says) or fail with a GgufError: never another exception, a crash or a hang.
 */
let dir: string;
let valid: Uint8Array;
let fields: Field[];
let dataStart: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slm-gguf-fuzz-'));
  const path = join(dir, 'valid.gguf');
  const ramp = (n: number, scale: number) => Float32Array.from({ length: n }, (_, i) => (i - n / 2) * scale);
  const tensors: (HostTensor & { type: GgufWritableType })[] = [
    { name: 'token_embd.weight', shape: [2, 3], data: ramp(6, 0.5), type: 'F32' },
    { name: 'norm', shape: [5], data: ramp(5, 1e-3), type: 'F16' },
    { name: 'blk.0.attn_q.weight', shape: [2, 32], data: ramp(64, 0.1), type: 'Q8_0' },
    { name: 'blk.0.ffn_up.weight', shape: [32], data: ramp(32, 2), type: 'Q4_0' },
    { name: 'output', shape: [1, 4], data: ramp(4, 3), type: 'BF16' },
  ];
  const writer = new GgufWriter(path)
    .addString('general.architecture', 'llama')
    .addUint32('llama.block_count', 1)
    .addBool('tokenizer.ggml.add_bos_token', false)
    .addStringArray('tokenizer.ggml.tokens', ['<s>', '</s>', 'a', 'bé'])
    .addFloat32Array('tokenizer.ggml.scores', [0, -1, -2, -3])
    .addUint64('test.u64', 12345n)
    .add('test.nested', { type: 'ARRAY', itemType: 'ARRAY', value: [{ type: 'ARRAY', itemType: 'INT16', value: [1, -1] }] });
  for (const t of tensors) writer.addTensorInfo(t.name, t.shape, t.type);
  await writer.write(tensors);
  valid = new Uint8Array(await readFile(path));
  ({ fields, dataStart } = walkGguf(valid));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readsCleanlyOrFailsCleanly(bytes: Uint8Array): Promise<boolean> {
  const path = join(dir, 'corrupt.gguf');
  await writeFile(path, bytes);
  let file: GgufFile | undefined;
  try {
    file = await GgufFile.open(path);
    for (const info of file.tensors) {
      const values = await file.readTensor(info.name).catch((error: unknown) => {
        // a corrupted type id may name a type that exists but cannot be dequantized
        if (error instanceof GgufError && error.code === 'UNSUPPORTED_TYPE') return undefined;
        throw error;
      });
      if (values && values.length !== info.shape.reduce((a, b) => a * b, 1)) return false;
    }
    return true;
  } catch (error) {
    if (error instanceof GgufError) return true;
    throw error;
  } finally {
    await file?.close();
  }
}

// `timeout` only catches hangs: a run that has not finished after it counts as a failure
const options = { seed: 20250611, numRuns: 200, timeout: 10_000 };

describe('GgufFile on corrupted input', () => {
  it('reads the uncorrupted file, whose fields the walker found', async () => {
    expect(await readsCleanlyOrFailsCleanly(valid)).toBe(true);
    const file = await GgufFile.open(join(dir, 'valid.gguf'));
    expect(file.dataOffset).toBe(dataStart);
    expect(file.tensors.length).toBe(5);
    await file.close();
    expect(fields.filter((f) => f.kind === 'offset').length).toBe(5);
  });

  it('survives truncation at every length', async () => {
    for (let length = 0; length < valid.length; length++) {
      expect(await readsCleanlyOrFailsCleanly(valid.slice(0, length))).toBe(true);
    }
  });

  it('survives random bytes written into the header, metadata and tensor infos', async () => {
    const edit = fc.record({ at: fc.nat({ max: dataStart - 1 }), value: fc.integer({ min: 0, max: 255 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 4 }), async (edits) => {
        const corrupted = valid.slice();
        for (const { at, value } of edits) corrupted[at] = value;
        return readsCleanlyOrFailsCleanly(corrupted);
      }),
      options,
    );
  });

  it('survives huge, zero and off-by-a-little counts, lengths, dims and offsets', async () => {
    const wide = fields.filter((f) => f.bytes === 8);
    const value = fc.oneof(
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.constantFrom(0n, 1n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, BigInt(valid.length)),
      fc.integer({ min: 0, max: 4096 }).map(BigInt),
    );
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: wide.length - 1 }), value, fc.integer({ min: -3, max: 3 }), async (index, raw, nudge) => {
        const corrupted = valid.slice();
        const view = new DataView(corrupted.buffer);
        const field = wide[index];
        const current = view.getBigUint64(field.at, true);
        // half the time a nearby value, which passes the cheap checks and stresses the later ones
        const replacement = raw % 2n === 0n ? raw : BigInt.asUintN(64, current + BigInt(nudge));
        view.setBigUint64(field.at, replacement, true);
        return readsCleanlyOrFailsCleanly(corrupted);
      }),
      options,
    );
  });

  it('survives any value type, dimension count or tensor type id', async () => {
    const narrow = fields.filter((f) => f.bytes === 4);
    const value = fc.oneof(fc.nat({ max: 64 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: narrow.length - 1 }), value, async (index, replacement) => {
        const corrupted = valid.slice();
        new DataView(corrupted.buffer).setUint32(narrow[index].at, replacement, true);
        return readsCleanlyOrFailsCleanly(corrupted);
      }),
      options,
    );
  });

  it('reads any bytes in the data section as values', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: valid.length - dataStart, maxLength: valid.length - dataStart }), async (data) => {
        const corrupted = valid.slice();
        corrupted.set(data, dataStart);
        const path = join(dir, 'data.gguf');
        await writeFile(path, corrupted);
        const file = await GgufFile.open(path);
        try {
          for (const info of file.tensors) expect((await file.readTensor(info.name)).length).toBe(info.elementCount);
        } finally {
          await file.close();
        }
      }),
      { ...options, numRuns: 50 },
    );
  });

  it('survives random bytes after a valid magic and version', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 256 }), async (tail) => {
        const bytes = new Uint8Array(8 + tail.length);
        bytes.set(valid.subarray(0, 8));
        bytes.set(tail, 8);
        return readsCleanlyOrFailsCleanly(bytes);
      }),
      options,
    );
  });
});
