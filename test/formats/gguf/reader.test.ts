import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgufError } from '../../../src/formats/gguf/gguf-error.ts';
import { GgufFile } from '../../../src/formats/gguf/reader.ts';
import { Rng } from '../../../src/util/rng.ts';
import { buildGguf, f16, kvString, kvU32, TENSOR, VALUE } from './gguf-bytes.ts';
import type { RawFile, RawKv, RawTensor } from './gguf-bytes.ts';

let dir: string;
let counter = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slm-gguf-reader-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function save(bytes: Uint8Array): Promise<string> {
  const path = join(dir, `file-${counter++}.gguf`);
  await writeFile(path, bytes);
  return path;
}

async function openBuilt(file: RawFile): Promise<GgufFile> {
  return GgufFile.open(await save(buildGguf(file)));
}

async function openError(bytes: Uint8Array): Promise<{ path: string; error: GgufError }> {
  const path = await save(bytes);
  const error = await GgufFile.open(path).then(
    async (file) => {
      await file.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GgufError);
  return { path, error: error as GgufError };
}

const f32Tensor = (name: string, values: number[], dims = [values.length]): RawTensor => ({
  name,
  dims,
  type: TENSOR.F32,
  data: new Uint8Array(Float32Array.from(values).buffer),
});

describe('GgufFile.open rejects what it cannot read, naming the file', () => {
  const valid: RawFile = { kvs: [kvString('general.architecture', 'llama')], tensors: [f32Tensor('w', [1, 2, 3, 4])] };

  function withVersionBytes(bytes: number[]): Uint8Array {
    const file = buildGguf(valid);
    file.set(bytes, 4);
    return file;
  }

  it.each([
    ['an empty file', new Uint8Array(0), 'TRUNCATED', /file ends at byte 0, inside the magic/],
    ['another format', new TextEncoder().encode('PK\u0003\u0004 not a model at all'), 'NOT_GGUF', /starts with 'PK\?\?' instead of 'GGUF'/],
    ['version 1', withVersionBytes([1, 0, 0, 0]), 'UNSUPPORTED_VERSION', /GGUF version 1 \(32-bit counts\) is not supported \(readable: 2, 3\)/],
    ['version 4', withVersionBytes([4, 0, 0, 0]), 'UNSUPPORTED_VERSION', /GGUF version 4 is not supported/],
    ['a big-endian file', withVersionBytes([0, 0, 0, 3]), 'BIG_ENDIAN', /0x03000000: this is a big-endian GGUF file \(version 3\)/],
  ])('%s', async (_, bytes, code, message) => {
    const { path, error } = await openError(bytes);
    expect(error.code).toBe(code);
    expect(error.message.startsWith(`${path}: `)).toBe(true);
    expect(error.message).toMatch(message);
  });

  const huge = 2n ** 64n - 1n;
  const kv = (key: string, type: number, value: RawKv['value']): RawKv => ({ key, type, value });
  it.each<[string, RawFile, string, RegExp]>([
    ['a huge string length', { kvs: [kv('k', VALUE.STRING, (o) => o.u64(huge))] }, 'COUNT_TOO_LARGE', /length of value of 'k' at byte \d+ is 18446744073709551615/],
    ['a huge array length', { kvs: [kv('k', VALUE.ARRAY, (o) => o.u32(VALUE.UINT32).u64(2n ** 40n))] }, 'COUNT_TOO_LARGE', /length of array 'k'.* at 4 bytes each/],
    ['a huge string array', { kvs: [kv('k', VALUE.ARRAY, (o) => o.u32(VALUE.STRING).u64(1000))] }, 'COUNT_TOO_LARGE', /length of array 'k'/],
    ['an unknown value type', { kvs: [kv('k', 13, (o) => o.u32(0))] }, 'UNKNOWN_VALUE_TYPE', /value type of 'k' at byte \d+ is 13/],
    ['a bool of 2', { kvs: [kv('k', VALUE.BOOL, (o) => o.u8(2))] }, 'INVALID_BOOL', /value of 'k' at byte \d+ is 2, but a bool must be 0 or 1/],
    ['a duplicate key', { kvs: [kvU32('k', 1), kvU32('k', 2)] }, 'DUPLICATE_KEY', /'k' appears more than once/],
    ['an empty key', { kvs: [kvU32('', 1)] }, 'INVALID_KEY', /key of metadata entry 0 at byte 24 is 0 bytes long/],
    ['a 64-bit alignment', { kvs: [kv('general.alignment', VALUE.UINT64, (o) => o.u64(32))] }, 'INVALID_ALIGNMENT', /must be a UINT32, but it is UINT64/],
    ['an alignment of 48', { kvs: [kvU32('general.alignment', 48)] }, 'INVALID_ALIGNMENT', /is 48, which is not a power of two/],
    ['an alignment of 0', { kvs: [kvU32('general.alignment', 0)] }, 'INVALID_ALIGNMENT', /is 0/],
    ['arrays nested 5 deep', { kvs: [kv('k', VALUE.ARRAY, (o) => { for (let i = 0; i < 4; i++) o.u32(VALUE.ARRAY).u64(1); o.u32(VALUE.ARRAY).u64(0); })] }, 'ARRAY_TOO_DEEP', /nests arrays more than 4 deep/],
    ['five dimensions', { tensors: [{ ...f32Tensor('t', [1]), dims: [1, 1, 1, 1, 1] }] }, 'TOO_MANY_DIMS', /tensor 't' has 5 dimensions/],
    ['a zero dimension', { tensors: [{ ...f32Tensor('t', [1]), dims: [1, 0] }] }, 'INVALID_SHAPE', /dimension 1 is 0/],
    ['dimensions whose product passes 2^53', { tensors: [{ ...f32Tensor('t', [1]), dims: [2n ** 30n, 2n ** 30n] }] }, 'INVALID_SHAPE', /dimension 1 is 1073741824/],
    ['a removed type id', { tensors: [{ ...f32Tensor('t', [1]), type: 4 }] }, 'UNKNOWN_TENSOR_TYPE', /tensor 't': type id 4 at byte \d+ is no GGML type/],
    ['an unknown type id', { tensors: [{ ...f32Tensor('t', [1]), type: 99 }] }, 'UNKNOWN_TENSOR_TYPE', /type id 99/],
    ['rows that are not whole blocks', { tensors: [{ name: 't', dims: [100, 1], type: TENSOR.Q4_K, data: new Uint8Array(144) }] }, 'INVALID_SHAPE', /rows of 100 values are not a whole number of Q4_K blocks of 256/],
    ['a misaligned offset', { tensors: [{ ...f32Tensor('t', [1]), offset: 4n }] }, 'MISALIGNED_TENSOR', /data offset 4 is not a multiple of the alignment 32/],
    ['an offset past the end', { tensors: [{ ...f32Tensor('t', [1]), offset: 2n ** 40n }] }, 'TENSOR_OUT_OF_FILE', /data offset 1099511627776 at byte \d+ lies beyond the end of the file/],
    ['data past the end', { tensors: [{ ...f32Tensor('t', [1]), dims: [64] }] }, 'TENSOR_OUT_OF_FILE', /tensor 't' \(F32 \[64\]\) needs bytes 64\.\.320, but the file has 96/],
    ['overlapping tensors', { tensors: [f32Tensor('a', [1, 2, 3, 4, 5, 6, 7, 8, 9]), { ...f32Tensor('b', [1]), offset: 32n }] }, 'OVERLAPPING_TENSORS', /'a' \(data bytes 0\.\.36\) and 'b' \(from 32\) overlap/],
    ['a duplicate tensor name', { tensors: [f32Tensor('t', [1]), f32Tensor('t', [2])] }, 'DUPLICATE_TENSOR', /'t' appears more than once/],
    ['an empty tensor name', { tensors: [f32Tensor('', [1])] }, 'INVALID_TENSOR_NAME', /name of tensor 0 at byte 24 is 0 bytes long, expected 1\.\.63/],
    ['a 64-byte tensor name', { tensors: [f32Tensor('n'.repeat(64), [1])] }, 'INVALID_TENSOR_NAME', /is 64 bytes long/],
  ])('%s', async (_, file, code, message) => {
    const { path, error } = await openError(buildGguf(file));
    expect(error.code).toBe(code);
    expect(error.message.startsWith(`${path}: `)).toBe(true);
    expect(error.message).toMatch(message);
  });

  it('bounds the tensor and metadata counts by the file size', async () => {
    for (const at of [8, 16]) {
      const bytes = buildGguf(valid);
      new DataView(bytes.buffer).setBigUint64(at, 2n ** 63n, true);
      const { error } = await openError(bytes);
      expect(error.code).toBe('COUNT_TOO_LARGE');
      expect(error.message).toMatch(at === 8 ? /tensor count at byte 8 is 9223372036854775808/ : /metadata count at byte 16/);
    }
  });

  it('reports a file cut inside a field, or too short for the counts it declares', async () => {
    const bytes = buildGguf(valid);
    const cut = await openError(bytes.subarray(0, 6));
    expect(cut.error.code).toBe('TRUNCATED');
    expect(cut.error.message).toMatch(/file ends at byte 6, inside the version \(bytes 4\.\.8\)/);
    const short = await openError(bytes.subarray(0, 30));
    expect(short.error.code).toBe('COUNT_TOO_LARGE');
    expect(short.error.message).toMatch(/tensor count at byte 8 is 1, but at 25 bytes each that needs more than the 14 bytes left in the file/);
  });
});

describe('GgufFile reads what the spec allows', () => {
  it('reads version 2 files, an empty tensor list, and nested arrays', async () => {
    const file = await openBuilt({
      version: 2,
      kvs: [{ key: 'nested', type: VALUE.ARRAY, value: (o) => o.u32(VALUE.ARRAY).u64(2).u32(VALUE.INT8).u64(1).u8(0xff).u32(VALUE.BOOL).u64(0) }],
    });
    try {
      expect(file.version).toBe(2);
      expect(file.tensors).toEqual([]);
      expect(file.metadata.get('nested')).toEqual({
        type: 'ARRAY',
        itemType: 'ARRAY',
        value: [
          { type: 'ARRAY', itemType: 'INT8', value: Int8Array.of(-1) },
          { type: 'ARRAY', itemType: 'BOOL', value: [] },
        ],
      });
    } finally {
      await file.close();
    }
  });

  it('decodes invalid UTF-8 in strings leniently, as U+FFFD', async () => {
    const file = await openBuilt({ kvs: [{ key: 'k', type: VALUE.STRING, value: (o) => o.u64(3).raw([0x61, 0xff, 0x62]) }] });
    try {
      expect(file.metadata.getString('k')).toBe('a\ufffdb');
    } finally {
      await file.close();
    }
  });

  it('places data at a custom alignment and accepts tensors in any order of offsets', async () => {
    const file = await openBuilt({
      alignment: 64,
      kvs: [kvU32('general.alignment', 64)],
      tensors: [
        { ...f32Tensor('second', [5, 6]), offset: 64n },
        { ...f32Tensor('first', [1, 2, 3]), offset: 0n },
      ],
    });
    try {
      expect(file.alignment).toBe(64);
      expect(file.dataOffset % 64).toBe(0);
      // the builder lays data out in list order, so "second" occupies bytes 0.. and "first" 64..
      expect([...(await file.readTensor('first'))]).toEqual([5, 6, 0]);
      expect([...(await file.readTensor('second'))]).toEqual([1, 2]);
    } finally {
      await file.close();
    }
  });

  it('dequantizes K-quant tensors of several rows, in row-major shape', async () => {
    const rng = new Rng(31);
    // two Q6_K super-blocks (two rows of 256): random bytes, with d set to a known f16 in each block
    const data = Uint8Array.from({ length: 2 * 210 }, () => rng.int(256));
    for (const at of [208, 418]) data.set([0x00, 0x30], at); // d = 0.125
    const file = await openBuilt({ tensors: [{ name: 'blk.0.ffn_down.weight', dims: [256, 2], type: TENSOR.Q6_K, data }] });
    try {
      const info = file.tensorInfo('blk.0.ffn_down.weight');
      expect(info.shape).toEqual([2, 256]);
      expect(info.byteLength).toBe(420);
      const values = await file.readTensor('blk.0.ffn_down.weight');
      // element 256 + 5 of the second block: low 4 bits from ql[5], top 2 from bits 0..1 of qh[5], scale 0
      const block = data.subarray(210);
      const q = ((block[5] & 0x0f) | ((block[128 + 5] & 3) << 4)) - 32;
      const scale = (block[192] << 24) >> 24;
      expect(values[256 + 5]).toBe(Math.fround(f16(0x3000) * scale * q));
    } finally {
      await file.close();
    }
  });
});

describe('GgufFile tensor access', () => {
  it('names an unsupported type, a missing tensor and a closed file', async () => {
    const path = await save(
      buildGguf({
        tensors: [
          { name: 'blk.0.attn_q.weight', dims: [256], type: TENSOR.Q2_K, data: new Uint8Array(84) },
          f32Tensor('norm', [1]),
        ],
      }),
    );
    const file = await GgufFile.open(path);
    await expect(file.readTensor('blk.0.attn_q.weight')).rejects.toThrow(
      `${path}: unsupported tensor type Q2_K in tensor 'blk.0.attn_q.weight' (readable: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)`,
    );
    expect((await file.readTensorBytes('blk.0.attn_q.weight')).length).toBe(84);
    expect(() => file.tensorInfo('nope')).toThrow(/no tensor named 'nope' \(the file holds 2, e\.g\. 'blk\.0\.attn_q\.weight', 'norm'\)/);
    await file.close();
    await expect(file.readTensor('norm')).rejects.toThrow(/cannot read tensor 'norm': the file was closed/);
  });

  it('checks metadata types on access', async () => {
    const file = await openBuilt({
      kvs: [kvString('s', 'text'), { key: 'big', type: VALUE.UINT64, value: (o) => o.u64(2n ** 60n) }, kvU32('n', 7)],
    });
    try {
      expect(() => file.metadata.getNumber('s')).toThrow(/metadata 's' should be a number, but it is STRING/);
      expect(() => file.metadata.getStringArray('n')).toThrow(/should be an array of strings, but it is UINT32/);
      expect(() => file.metadata.getNumber('big')).toThrow(/'big' = 1152921504606846976 does not fit a JS number exactly/);
      expect(file.metadata.getNumber('n')).toBe(7);
      expect(file.metadata.getString('absent')).toBeUndefined();
    } finally {
      await file.close();
    }
  });
});
