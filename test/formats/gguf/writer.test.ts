import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgufError } from '../../../src/formats/gguf/gguf-error.ts';
import { GgufFile } from '../../../src/formats/gguf/reader.ts';
import { GgufWriter } from '../../../src/formats/gguf/writer.ts';
import type { HostTensor } from '../../../src/formats/safetensors.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slm-gguf-writer-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const tensor = (name: string, shape: number[]): HostTensor => ({
  name,
  shape,
  data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i / 10),
});

function errorOf(run: () => unknown): GgufError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(GgufError);
    return error as GgufError;
  }
  throw new Error('expected a GgufError');
}

async function rejectionOf(promise: Promise<unknown>): Promise<GgufError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GgufError);
  return error as GgufError;
}

describe('GgufWriter section order', () => {
  it('refuses metadata after the first tensor info', () => {
    const writer = new GgufWriter(join(dir, 'order.gguf')).addString('general.name', 'x').addTensorInfo('w', [4], 'F32');
    const error = errorOf(() => writer.addUint32('late.key', 1));
    expect(error.code).toBe('WRITER_ORDER');
    expect(error.message).toMatch(/order\.gguf: cannot add metadata 'late\.key': metadata must all be added before the first tensor info/);
  });

  it('refuses every call once the file is written', async () => {
    const path = join(dir, 'done.gguf');
    const writer = new GgufWriter(path).addTensorInfo('w', [4], 'F32');
    await writer.write([tensor('w', [4])]);
    expect(errorOf(() => writer.addTensorInfo('v', [4], 'F32')).code).toBe('WRITER_ORDER');
    expect(errorOf(() => writer.addString('k', 'v')).code).toBe('WRITER_ORDER');
    expect((await rejectionOf(writer.write([tensor('w', [4])]))).code).toBe('WRITER_ORDER');
  });

  it('writes a file with metadata only', async () => {
    const path = join(dir, 'meta-only.gguf');
    await new GgufWriter(path).addString('general.architecture', 'llama').write([]);
    const file = await GgufFile.open(path);
    try {
      expect(file.tensors).toEqual([]);
      expect(file.metadata.getString('general.architecture')).toBe('llama');
    } finally {
      await file.close();
    }
  });
});

describe('GgufWriter arguments', () => {
  const writer = () => new GgufWriter(join(dir, 'args.gguf'));

  it.each([
    ['a UINT32 below 0', (w: GgufWriter) => w.addUint32('k', -1), /metadata 'k': a UINT32 must be an integer in 0\.\.4294967295, got -1/],
    ['a fractional INT32', (w: GgufWriter) => w.addInt32('k', 1.5), /an integer/],
    ['a UINT64 beyond 2^53 as a number', (w: GgufWriter) => w.addUint64('k', 2 ** 60), /safe integer/],
    ['a negative UINT64', (w: GgufWriter) => w.addUint64('k', -1n), /a UINT64 must be a bigint/],
    ['a non-string in a string array', (w: GgufWriter) => w.addStringArray('k', ['a', 3 as unknown as string]), /item 1: a STRING must be a string/],
    ['an unknown value type', (w: GgufWriter) => w.add('k', { type: 'UINT128', value: 1 } as never), /unknown value type "UINT128"/],
    ['an empty key', (w: GgufWriter) => w.addString('', 'v'), /metadata key must be a string of 1\.\.65535 bytes/],
    ['general.alignment as metadata', (w: GgufWriter) => w.addUint32('general.alignment', 64), /alignment option/],
    ['a key added twice', (w: GgufWriter) => w.addString('k', 'a').addString('k', 'b'), /'k' is added twice/],
    ['a tensor name used twice', (w: GgufWriter) => w.addTensorInfo('t', [1], 'F32').addTensorInfo('t', [1], 'F32'), /tensor 't': the name is used twice/],
    ['a tensor name over 63 bytes', (w: GgufWriter) => w.addTensorInfo('x'.repeat(64), [1], 'F32'), /1\.\.63 bytes/],
    ['a zero dimension', (w: GgufWriter) => w.addTensorInfo('t', [0, 4], 'F32'), /positive integers/],
    ['five dimensions', (w: GgufWriter) => w.addTensorInfo('t', [1, 1, 1, 1, 1], 'F32'), /at most 4/],
    ['an unwritable type', (w: GgufWriter) => w.addTensorInfo('t', [256], 'Q2_K' as never), /type must be one of F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K/],
    ['a Q8_0 row that is not whole blocks', (w: GgufWriter) => w.addTensorInfo('t', [4, 30], 'Q8_0'), /Q8_0 needs rows .* in multiples of 32, got shape \[4,30\]/],
  ])('rejects %s', (_, act, message) => {
    const error = errorOf(() => act(writer()));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/args\.gguf: /);
    expect(error.message).toMatch(message);
  });

  it('rejects an alignment that is not a power of two, and an unknown version', () => {
    expect(errorOf(() => new GgufWriter('x.gguf', { alignment: 48 })).message).toMatch(/alignment must be a power of two/);
    expect(errorOf(() => new GgufWriter('x.gguf', { version: 1 as never })).message).toMatch(/version must be one of 2, 3/);
  });
});

describe('GgufWriter streaming and atomicity', () => {
  async function failedWrite(tensors: HostTensor[]): Promise<{ error: GgufError; before: Buffer; after: Buffer; leftovers: string[] }> {
    const path = join(dir, 'atomic.gguf');
    await writeFile(path, 'previous content');
    const before = await readFile(path);
    const writer = new GgufWriter(path).addTensorInfo('a', [2, 32], 'Q8_0').addTensorInfo('b', [3], 'F16');
    const error = await rejectionOf(writer.write(tensors));
    const leftovers = (await readdir(dir)).filter((name) => name.startsWith('.atomic.gguf'));
    return { error, before, after: await readFile(path), leftovers };
  }

  it.each([
    ['out of order', [tensor('b', [3]), tensor('a', [2, 32])], /tensor 'a': expected it next, got 'b'/],
    ['with another shape', [tensor('a', [64]), tensor('b', [3])], /tensor 'a': was declared with shape \[2,32\], got \[64\]/],
    ['missing one', [tensor('a', [2, 32])], /the tensors ended after 1 of 2; 'b' is missing/],
    ['with one too many', [tensor('a', [2, 32]), tensor('b', [3]), tensor('c', [1])], /got tensor 'c' after all 2 declared tensors/],
  ])('fails on tensors %s and leaves the old file and no temp file', async (_, tensors, message) => {
    const { error, before, after, leftovers } = await failedWrite(tensors);
    expect(error.message).toMatch(message);
    expect(after.equals(before)).toBe(true);
    expect(leftovers).toEqual([]);
  });

  it('asks for each tensor only after the previous one is on disk', async () => {
    const path = join(dir, 'stream.gguf');
    const shapes: [string, number[]][] = [
      ['a', [64, 64]],
      ['b', [32]],
      ['c', [8, 32]],
    ];
    const writer = new GgufWriter(path);
    for (const [name, shape] of shapes) writer.addTensorInfo(name, shape, 'F32');
    const tempSizes: number[] = [];
    async function* produce(): AsyncGenerator<HostTensor> {
      for (const [name, shape] of shapes) {
        const temp = (await readdir(dir)).find((entry) => entry.startsWith('.stream.gguf.tmp-'));
        tempSizes.push(temp ? (await stat(join(dir, temp))).size : -1);
        yield tensor(name, shape);
      }
    }
    await writer.write(produce());
    expect(tempSizes[0]).toBeGreaterThan(0); // the header is written before the first tensor is asked for
    // before 'b' is produced, the header and all of 'a' (64 * 64 * 4 bytes) are in the temp file
    expect(tempSizes[1]).toBeGreaterThanOrEqual(tempSizes[0] + 64 * 64 * 4);
    expect(tempSizes[2]).toBeGreaterThanOrEqual(tempSizes[1] + 32 * 4);
    const file = await GgufFile.open(path);
    try {
      expect([...(await file.readTensor('b'))]).toEqual([...tensor('b', [32]).data]);
    } finally {
      await file.close();
    }
  });
});
