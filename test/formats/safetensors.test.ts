import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bf16BitsToFloat32, f16BitsToFloat32, float32ToBf16Bits, float32ToF16Bits } from '../../src/formats/half-float.ts';
import { SafetensorsError, SafetensorsFile, writeSafetensors } from '../../src/formats/safetensors.ts';
import type { HostTensor } from '../../src/formats/safetensors.ts';
import { Rng } from '../../src/util/rng.ts';
import { randomTensor } from '../helpers/host-tensors.ts';

const TORCH_FIXTURE = new URL('../fixtures/safetensors/torch-dtypes.safetensors', import.meta.url).pathname;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slm-safetensors-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});


async function readAll(path: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const file = await SafetensorsFile.open(path);
  try {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const name of file.names()) out.set(name, { shape: file.info(name).shape, data: await file.read(name) });
    return out;
  } finally {
    await file.close();
  }
}

/** A file assembled by hand: u64 length (or an override), header bytes, data. */
function rawFile(header: unknown, data = new Uint8Array(0), lengthOverride?: bigint): Uint8Array {
  const json =
    header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const bytes = new Uint8Array(8 + json.length + data.length);
  new DataView(bytes.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  bytes.set(json, 8);
  bytes.set(data, 8 + json.length);
  return bytes;
}

const bitsOf = (values: Float32Array) => [...new Uint32Array(values.buffer, values.byteOffset, values.length)];

describe('writeSafetensors + SafetensorsFile round trip', () => {
  const rng = new Rng(11);
  const tensors = [
    randomTensor(rng, 'model.embed_tokens.weight', [16, 8]),
    randomTensor(rng, 'scalar', []),
    randomTensor(rng, 'empty', [0, 4]),
    randomTensor(rng, 'model.norm.weight', [8], 0.01),
    // more values than one conversion chunk
    randomTensor(rng, 'big', [300, 257], 3),
  ];

  it('stores F32 exactly, in the given order, with metadata', async () => {
    const path = join(dir, 'f32.safetensors');
    await writeSafetensors(path, tensors, { dtype: 'F32', metadata: { format: 'pt', note: 'héllo' } });
    const file = await SafetensorsFile.open(path);
    expect(file.names()).toEqual(tensors.map((t) => t.name));
    expect(file.metadata).toEqual({ format: 'pt', note: 'héllo' });
    expect(file.info('model.embed_tokens.weight')).toEqual({ dtype: 'F32', shape: [16, 8], byteLength: 16 * 8 * 4 });
    await file.close();
    const back = await readAll(path);
    for (const t of tensors) {
      expect(back.get(t.name)!.shape).toEqual(t.shape);
      expect(bitsOf(back.get(t.name)!.data)).toEqual(bitsOf(t.data));
    }
  });

  it.each([
    ['F16', float32ToF16Bits, f16BitsToFloat32, 2],
    ['BF16', float32ToBf16Bits, bf16BitsToFloat32, 2],
  ] as const)('stores %s rounded like the scalar conversion', async (dtype, encode, decode, itemBytes) => {
    const path = join(dir, `${dtype}.safetensors`);
    await writeSafetensors(path, tensors, { dtype });
    const back = await readAll(path);
    for (const t of tensors) {
      const expected = Float32Array.from(t.data, (v) => decode(encode(v)));
      expect(bitsOf(back.get(t.name)!.data)).toEqual(bitsOf(expected));
    }
    const values = tensors.reduce((n, t) => n + t.data.length, 0);
    const headerLength = Number((await readFile(path)).readBigUInt64LE(0));
    expect((await stat(path)).size).toBe(8 + headerLength + values * itemBytes);
  });

  it('pads the header with spaces to a multiple of 8 and packs the data without holes', async () => {
    const path = join(dir, 'layout.safetensors');
    await writeSafetensors(path, tensors.slice(0, 2), { dtype: 'F32' });
    const bytes = await readFile(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0);
    const text = bytes.subarray(8, 8 + headerLength).toString('utf8');
    const header = JSON.parse(text);
    expect(text.trimEnd()).toBe(JSON.stringify(header));
    expect(text.slice(text.trimEnd().length)).toMatch(/^ *$/);
    expect(header['model.embed_tokens.weight']).toEqual({ dtype: 'F32', shape: [16, 8], data_offsets: [0, 512] });
    expect(header.scalar).toEqual({ dtype: 'F32', shape: [], data_offsets: [512, 516] });
    expect(bytes.length).toBe(8 + headerLength + 516);
  });

  it('replaces an existing file and leaves no temp files behind', async () => {
    const sub = await mkdtemp(join(dir, 'replace-'));
    const path = join(sub, 'w.safetensors');
    await writeSafetensors(path, tensors.slice(0, 1), { dtype: 'F32' });
    await writeSafetensors(path, tensors.slice(3, 4), { dtype: 'BF16' });
    expect((await readAll(path)).has('model.norm.weight')).toBe(true);
    expect(await readdir(sub)).toEqual(['w.safetensors']);
  });
});

describe('writeSafetensors argument errors', () => {
  const good: HostTensor = { name: 'a', shape: [2], data: new Float32Array(2) };
  it.each([
    ['a shape that does not match the data', [{ name: 'b', shape: [3], data: new Float32Array(2) }], 'F32', /holds 3 values but data has 2/],
    ['a negative dimension', [{ name: 'b', shape: [-1], data: new Float32Array(0) }], 'F32', /non-negative integers/],
    ['a duplicate name', [good, good], 'F32', /'a' is used twice/],
    ['the reserved name', [{ ...good, name: '__metadata__' }], 'F32', /non-empty string other than __metadata__/],
    ['an unknown dtype', [good], 'F8_E4M3', /dtype must be one of F32, F16, BF16/],
  ])('rejects %s and keeps the old file', async (_, tensors, dtype, message) => {
    const sub = await mkdtemp(join(dir, 'bad-'));
    const path = join(sub, 'x.safetensors');
    await writeFile(path, 'old');
    const error = await writeSafetensors(path, tensors as HostTensor[], { dtype: dtype as 'F32' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafetensorsError);
    expect((error as SafetensorsError).code).toBe('INVALID_ARGUMENT');
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toContain(path);
    expect(await readFile(path, 'utf8')).toBe('old');
    expect(await readdir(sub)).toEqual(['x.safetensors']);
  });
});

describe('a file written by PyTorch', () => {
  it('reads F32, F16, BF16, F64, I64, I32 and U8 tensors', async () => {
    const file = await SafetensorsFile.open(TORCH_FIXTURE);
    expect(file.metadata.writer).toBe('make_hf_reference.py');
    const source = await file.read('source');
    expect(file.info('as_f16')).toEqual({ dtype: 'F16', shape: [source.length], byteLength: source.length * 2 });
    expect(bitsOf(await file.read('as_f64'))).toEqual(bitsOf(source));
    expect([...(await file.read('ints_i64'))]).toEqual([0, 1, -1, 7, -123456, 2 ** 24, 2 ** 40]);
    expect([...(await file.read('ints_i32'))]).toEqual([0, 1, -1, 7, -123456]);
    expect(file.info('bytes_u8').shape).toEqual([2, 2]);
    expect([...(await file.read('bytes_u8'))]).toEqual([0, 1, 128, 255]);
    expect(source[2]).toBe(1);
    await file.close();
  });

  it.each([
    ['F16', 'as_f16'],
    ['BF16', 'as_bf16'],
  ] as const)('converts float32 to %s exactly as torch does', async (dtype, name) => {
    const torchFile = await SafetensorsFile.open(TORCH_FIXTURE);
    const source = await torchFile.read('source');
    const byTorch = await torchFile.read(name);
    await torchFile.close();

    const path = join(dir, `ours-${dtype}.safetensors`);
    await writeSafetensors(path, [{ name, shape: [source.length], data: source }], { dtype });
    const ours = (await readAll(path)).get(name)!.data;
    const nan = [...byTorch].map(Number.isNaN);
    expect([...ours].map(Number.isNaN)).toEqual(nan);
    expect(nan.filter(Boolean)).toHaveLength(1);
    expect(bitsOf(ours).filter((_, i) => !nan[i])).toEqual(bitsOf(byTorch).filter((_, i) => !nan[i]));
  });
});

describe('SafetensorsFile validation', () => {
  const f32 = (n: number) => new Uint8Array(n * 4);
  const cases: [string, Uint8Array, string, RegExp][] = [
    ['a file shorter than the length prefix', new Uint8Array(5), 'TRUNCATED', /too short/],
    ['an absurd header length', rawFile({}, undefined, 200_000_000n), 'HEADER_TOO_LARGE', /exceeds/],
    ['a u64 header length near 2^64', rawFile({}, undefined, 2n ** 64n - 1n), 'HEADER_TOO_LARGE', /exceeds/],
    ['a header length beyond the file', rawFile({}, undefined, 4096n), 'TRUNCATED', /beyond the end of the file/],
    ['invalid JSON', rawFile('{"a": '), 'INVALID_HEADER', /not valid JSON/],
    ['invalid UTF-8', rawFile(Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), 'INVALID_HEADER', /not valid UTF-8/],
    ['a JSON array', rawFile([1, 2]), 'INVALID_HEADER', /must be a JSON object/],
    ['an entry that is not an object', rawFile({ a: 3 }), 'INVALID_TENSOR', /tensor 'a': entry must be an object/],
    ['an unknown dtype', rawFile({ a: { dtype: 'F4', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), 'INVALID_TENSOR', /unknown dtype "F4"/],
    ['a negative dimension', rawFile({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32(1)), 'INVALID_TENSOR', /non-negative integers/],
    ['a fractional dimension', rawFile({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, f32(1)), 'INVALID_TENSOR', /non-negative integers/],
    ['a shape that does not match its offsets', rawFile({ a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, new Uint8Array(20)), 'INVALID_TENSOR', /needs 24 bytes but data_offsets \[0, 20\] span 20/],
    ['an absurd shape', rawFile({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, f32(1)), 'INVALID_TENSOR', /too large/],
    ['reversed offsets', rawFile({ a: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, f32(1)), 'INVALID_TENSOR', /0 <= begin <= end/],
    ['offsets past the end', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32(1)), 'INVALID_OFFSETS', /ends at byte 8 of the data buffer, which is only 4/],
    ['overlapping tensors', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(3)), 'INVALID_OFFSETS', /'a' and 'b' overlap/],
    ['a hole', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32(2)), 'INVALID_OFFSETS', /bytes 0..4 .* belong to no tensor/],
    ['trailing bytes', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(2)), 'INVALID_OFFSETS', /last 4 bytes/],
    ['a duplicate name', rawFile('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}, "a" :{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)), 'INVALID_HEADER', /'a' appears more than once/],
    ['non-string metadata', rawFile({ __metadata__: { epoch: 3 } }), 'INVALID_HEADER', /__metadata__ must map strings to strings/],
  ];

  it.each(cases)('rejects %s', async (_, bytes, code, message) => {
    const path = join(dir, 'corrupt.safetensors');
    await writeFile(path, bytes);
    const error = await SafetensorsFile.open(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafetensorsError);
    expect((error as SafetensorsError).code).toBe(code);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message.startsWith(`${path}: `)).toBe(true);
  });

  it('accepts nested names, padding, and keys in any order', async () => {
    const header = '{"b":{"shape":[1],"data_offsets":[4,8],"dtype":"F32"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"k":"{\\"x\\": 1}"}}   ';
    const data = new Uint8Array(Float32Array.from([1.5, -2]).buffer);
    const path = join(dir, 'order.safetensors');
    await writeFile(path, rawFile(header, data));
    const file = await SafetensorsFile.open(path);
    expect(file.names()).toEqual(['a', 'b']);
    expect(file.metadata).toEqual({ k: '{"x": 1}' });
    expect([...(await file.read('b'))]).toEqual([-2]);
    await file.close();
  });

  it('names what is wrong when reading', async () => {
    const path = join(dir, 'read-errors.safetensors');
    await writeFile(path, rawFile({ q: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2)));
    const file = await SafetensorsFile.open(path);
    await expect(file.read('missing')).rejects.toThrow(/no tensor named 'missing' \(the file holds 1, e.g. 'q'\)/);
    await expect(file.read('q')).rejects.toMatchObject({ code: 'UNSUPPORTED_DTYPE' });
    await file.close();
    await expect(file.read('q')).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('reports a missing file as its own error', async () => {
    const error = await SafetensorsFile.open(join(dir, 'nope.safetensors')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafetensorsError);
    expect((error as SafetensorsError).code).toBe('IO');
    expect((error as Error).message).toContain('nope.safetensors');
  });
});
