import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgufFile } from '../../../src/formats/gguf/reader.ts';
import { GgufWriter } from '../../../src/formats/gguf/writer.ts';
import type { GgufWritableType } from '../../../src/formats/gguf/writer.ts';
import { bf16BitsToFloat32, f16BitsToFloat32, float32ToBf16Bits, float32ToF16Bits } from '../../../src/formats/half-float.ts';
import type { HostTensor } from '../../../src/formats/safetensors.ts';
import { Rng } from '../../../src/util/rng.ts';
import { f16 } from './gguf-bytes.ts';
import { randomTensor } from '../../helpers/host-tensors.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slm-gguf-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});


/** Bit-for-bit equality, fast enough for millions of values (deep equality is not). */
function expectSameFloats(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  const bytes = (values: Float32Array) => Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  expect(bytes(actual).equals(bytes(expected))).toBe(true);
}

async function writeFile(path: string, tensors: { tensor: HostTensor; type: GgufWritableType }[], setup = (_: GgufWriter) => {}) {
  const writer = new GgufWriter(path);
  setup(writer);
  for (const { tensor, type } of tensors) writer.addTensorInfo(tensor.name, tensor.shape, type);
  await writer.write(tensors.map(({ tensor }) => tensor));
}

/** Q8_0 of one block from the ggml formula (float32 steps, roundf), for comparing stored bytes. */
function q8Block(values: Float32Array): { dBits: number; q: number[] } {
  const float = (v: number) => Float32Array.of(v)[0];
  const amax = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const d = float(amax / 127);
  const id = d ? float(1 / d) : 0;
  // `+ 0` turns the -0 of small negative values into the 0 an int8 holds
  return { dBits: float32ToF16Bits(d), q: [...values].map((v) => Math.sign(float(v * id)) * Math.floor(Math.abs(float(v * id)) + 0.5) + 0) };
}

describe('GgufWriter + GgufFile round trip', () => {
  const rng = new Rng(21);
  const cases: { tensor: HostTensor; type: GgufWritableType }[] = [
    { tensor: randomTensor(rng, 'token_embd.weight', [10, 64]), type: 'F32' },
    { tensor: randomTensor(rng, 'scalar', []), type: 'F32' },
    { tensor: randomTensor(rng, 'blk.0.attn_norm.weight', [64]), type: 'F16' },
    { tensor: randomTensor(rng, 'blk.0.attn_q.weight', [2, 3, 4, 5], 1e-3), type: 'BF16' },
    // more values than one conversion chunk of the writer
    { tensor: randomTensor(rng, 'blk.0.ffn_up.weight', [547, 128], 0.02), type: 'Q8_0' },
    { tensor: randomTensor(rng, 'blk.0.ffn_down.weight', [3, 2, 64]), type: 'Q4_0' },
    { tensor: randomTensor(rng, 'output.weight', [300, 257], 3), type: 'F16' },
  ];
  let path: string;
  let file: GgufFile;

  beforeAll(async () => {
    path = join(dir, 'round-trip.gguf');
    await writeFile(path, cases, (writer) =>
      writer
        .addString('general.architecture', 'llama')
        .addUint32('llama.block_count', 1)
        .addInt32('test.negative', -7)
        .addFloat32('llama.rope.freq_base', 500000.5)
        .addBool('tokenizer.ggml.add_bos_token', true)
        .addUint64('test.big', 2n ** 64n - 1n)
        .addStringArray('tokenizer.ggml.merges', ['a b', 'ab c', 'é ü', ''])
        .addInt32Array('tokenizer.ggml.token_type', [1, 2, 3, -1])
        .addUint32Array('test.u32s', Uint32Array.of(0, 4294967295))
        .addFloat32Array('tokenizer.ggml.scores', [0.5, -1.25, 3e-8])
        .add('test.u8', { type: 'UINT8', value: 255 })
        .add('test.i8', { type: 'INT8', value: -128 })
        .add('test.u16', { type: 'UINT16', value: 65535 })
        .add('test.i16', { type: 'INT16', value: -32768 })
        .add('test.i64', { type: 'INT64', value: -(2n ** 63n) })
        .add('test.f64', { type: 'FLOAT64', value: Math.PI })
        .add('test.bools', { type: 'ARRAY', itemType: 'BOOL', value: [true, false] })
        .add('test.nested', {
          type: 'ARRAY',
          itemType: 'ARRAY',
          value: [
            { type: 'ARRAY', itemType: 'STRING', value: ['x'] },
            { type: 'ARRAY', itemType: 'UINT64', value: [1n, 2n] },
          ],
        }),
    );
    file = await GgufFile.open(path);
  });
  afterAll(async () => {
    await file?.close();
  });

  it('reads back every metadata type', () => {
    const m = file.metadata;
    expect(m.getString('general.architecture')).toBe('llama');
    expect(m.getNumber('llama.block_count')).toBe(1);
    expect(m.get('llama.block_count')).toEqual({ type: 'UINT32', value: 1 });
    expect(m.getNumber('test.negative')).toBe(-7);
    expect(m.getNumber('llama.rope.freq_base')).toBe(500000.5);
    expect(m.getBool('tokenizer.ggml.add_bos_token')).toBe(true);
    expect(m.get('test.big')).toEqual({ type: 'UINT64', value: 2n ** 64n - 1n });
    expect(m.getStringArray('tokenizer.ggml.merges')).toEqual(['a b', 'ab c', 'é ü', '']);
    expect(m.get('tokenizer.ggml.token_type')).toEqual({ type: 'ARRAY', itemType: 'INT32', value: Int32Array.of(1, 2, 3, -1) });
    expect(m.getNumberArray('test.u32s')).toEqual([0, 4294967295]);
    expect(m.get('tokenizer.ggml.scores')).toEqual({ type: 'ARRAY', itemType: 'FLOAT32', value: Float32Array.of(0.5, -1.25, 3e-8) });
    expect([m.getNumber('test.u8'), m.getNumber('test.i8'), m.getNumber('test.u16'), m.getNumber('test.i16')]).toEqual([255, -128, 65535, -32768]);
    expect(m.get('test.i64')).toEqual({ type: 'INT64', value: -(2n ** 63n) });
    expect(m.getNumber('test.f64')).toBe(Math.PI);
    expect(m.get('test.bools')).toEqual({ type: 'ARRAY', itemType: 'BOOL', value: [true, false] });
    expect(m.get('test.nested')).toEqual({
      type: 'ARRAY',
      itemType: 'ARRAY',
      value: [
        { type: 'ARRAY', itemType: 'STRING', value: ['x'] },
        { type: 'ARRAY', itemType: 'UINT64', value: BigUint64Array.of(1n, 2n) },
      ],
    });
    // quantized tensors make the spec's quantization version mandatory
    expect(m.get('general.quantization_version')).toEqual({ type: 'UINT32', value: 2 });
    expect(m.has('general.alignment')).toBe(false);
    expect(m.keys()[0]).toBe('general.architecture');
  });

  it('describes every tensor with GGUF dims and PyTorch shape', () => {
    expect(file.version).toBe(3);
    expect(file.tensorNames()).toEqual(cases.map((c) => c.tensor.name));
    for (const { tensor, type } of cases) {
      const info = file.tensorInfo(tensor.name);
      expect(info.type).toBe(type);
      expect(info.shape).toEqual(tensor.shape);
      expect(info.dims).toEqual([...tensor.shape].reverse());
      expect(info.elementCount).toBe(tensor.data.length);
      expect(info.offset % 32).toBe(0);
      expect(info.fileOffset).toBe(file.dataOffset + info.offset);
    }
    expect(file.tensorInfo('blk.0.attn_q.weight').dims).toEqual([5, 4, 3, 2]);
  });

  it('returns F32 exactly and F16/BF16 as their nearest-even conversions', async () => {
    for (const { tensor, type } of cases.filter((c) => ['F32', 'F16', 'BF16'].includes(c.type))) {
      const read = await file.readTensor(tensor.name);
      const expected =
        type === 'F32'
          ? tensor.data
          : tensor.data.map((v) => (type === 'F16' ? f16BitsToFloat32(float32ToF16Bits(v)) : bf16BitsToFloat32(float32ToBf16Bits(v))));
      expectSameFloats(read, expected);
      // half an ulp: relative for normal numbers, and 2^-25 absolute in the F16 subnormal range
      const relative = type === 'F32' ? 0 : type === 'F16' ? 2 ** -11 : 2 ** -8;
      const absolute = type === 'F16' ? 2 ** -25 : 0;
      const worst = read.reduce((max, v, i) => Math.max(max, Math.abs(v - tensor.data[i]) - Math.max(Math.abs(tensor.data[i]) * relative, absolute)), 0);
      expect(worst).toBeLessThanOrEqual(0);
    }
  });

  it('stores Q8_0 bit-exactly as the ggml formula and reads it back as q * d', async () => {
    const { tensor } = cases[4];
    const bytes = await file.readTensorBytes(tensor.name);
    const read = await file.readTensor(tensor.name);
    expect(bytes.length).toBe((tensor.data.length / 32) * 34);
    for (let b = 0; b < tensor.data.length / 32; b++) {
      const { dBits, q } = q8Block(tensor.data.subarray(32 * b, 32 * b + 32));
      expect(bytes[34 * b] | (bytes[34 * b + 1] << 8)).toBe(dBits);
      expect([...new Int8Array(bytes.buffer, 34 * b + 2, 32)]).toEqual(q);
      expect([...read.subarray(32 * b, 32 * b + 32)]).toEqual(q.map((v) => Math.fround(v * f16(dBits))));
    }
  });

  it('keeps Q4_0 within half a step, or a step where the range -8..7 clips', async () => {
    const { tensor } = cases[5];
    const read = await file.readTensor(tensor.name);
    for (let b = 0; b < tensor.data.length / 32; b++) {
      const block = [...tensor.data.subarray(32 * b, 32 * b + 32)];
      const m = block.reduce((best, v) => (Math.abs(v) > Math.abs(best) ? v : best), 0);
      const d = m / -8;
      block.forEach((x, j) => {
        const steps = x / d + 8.5 >= 16 ? 1 : 0.5;
        expect(Math.abs(read[32 * b + j] - x)).toBeLessThanOrEqual(Math.abs(d) * (steps + 2 ** -8));
      });
    }
  });

  it('pads the data section and every tensor with zeros to the alignment', async () => {
    const bytes = await readFile(path);
    expect(file.dataOffset % 32).toBe(0);
    const last = file.tensors[file.tensors.length - 1];
    expect(bytes.length).toBe(last.fileOffset + Math.ceil(last.byteLength / 32) * 32);
    for (const tensor of file.tensors) {
      const end = tensor.fileOffset + tensor.byteLength;
      expect([...bytes.subarray(end, Math.ceil(end / 32) * 32)].every((b) => b === 0)).toBe(true);
    }
  });
});

describe('large metadata and tensors', () => {
  it('reads a 150k-token vocabulary whose header exceeds the first read', async () => {
    const path = join(dir, 'vocab.gguf');
    const tokens = Array.from({ length: 150_000 }, (_, i) => `tok_${i.toString(36)}_ĠΩ`);
    const scores = Float32Array.from({ length: tokens.length }, (_, i) => -i / 7);
    const writer = new GgufWriter(path).addStringArray('tokenizer.ggml.tokens', tokens).addFloat32Array('tokenizer.ggml.scores', scores);
    const small = { name: 'w', shape: [4], data: Float32Array.of(1, 2, 3, 4) };
    await writer.addTensorInfo('w', [4], 'F32').write([small]);
    const file = await GgufFile.open(path);
    try {
      expect(file.dataOffset).toBeGreaterThan(1 << 21);
      const read = file.metadata.getStringArray('tokenizer.ggml.tokens')!;
      expect(read.length).toBe(150_000);
      expect(read[0]).toBe(tokens[0]);
      expect(read[149_999]).toBe(tokens[149_999]);
      const readScores = file.metadata.get('tokenizer.ggml.scores');
      expect(readScores?.type === 'ARRAY' && readScores.itemType).toBe('FLOAT32');
      expectSameFloats(readScores!.value as Float32Array, scores);
      expect([...(await file.readTensor('w'))]).toEqual([1, 2, 3, 4]);
    } finally {
      await file.close();
    }
  });

  it('reads a tensor larger than one read chunk', async () => {
    const path = join(dir, 'big.gguf');
    const tensor = randomTensor(new Rng(5), 'big', [(16 << 20) / 4 / 64 + 3, 64]);
    await writeFile(path, [{ tensor, type: 'F32' }]);
    const file = await GgufFile.open(path);
    try {
      expect(file.tensorInfo('big').byteLength).toBeGreaterThan(16 << 20);
      expectSameFloats(await file.readTensor('big'), tensor.data);
    } finally {
      await file.close();
    }
  });
});

describe('versions', () => {
  it('writes version 2 with the same layout as version 3 and reads both', async () => {
    const tensor = { name: 'w', shape: [2, 32], data: Float32Array.from({ length: 64 }, (_, i) => i / 3) };
    const paths = { 2: join(dir, 'v2.gguf'), 3: join(dir, 'v3.gguf') } as const;
    for (const version of [2, 3] as const) {
      await new GgufWriter(paths[version], { version }).addString('general.name', 'v').addTensorInfo('w', [2, 32], 'Q8_0').write([tensor]);
    }
    const [v2, v3] = [await readFile(paths[2]), await readFile(paths[3])];
    expect(new DataView(v2.buffer, v2.byteOffset).getUint32(4, true)).toBe(2);
    expect(v2.subarray(8)).toEqual(v3.subarray(8));
    const read = async (path: string) => {
      const file = await GgufFile.open(path);
      try {
        return { version: file.version, data: await file.readTensor('w') };
      } finally {
        await file.close();
      }
    };
    const [fromV2, fromV3] = [await read(paths[2]), await read(paths[3])];
    expect([fromV2.version, fromV3.version]).toEqual([2, 3]);
    expectSameFloats(fromV2.data, fromV3.data);
  });

  it('honours a custom alignment and records it in general.alignment', async () => {
    const path = join(dir, 'aligned.gguf');
    const tensors = [
      { name: 'a', shape: [3], data: Float32Array.of(1, 2, 3) },
      { name: 'b', shape: [1], data: Float32Array.of(4) },
    ];
    const writer = new GgufWriter(path, { alignment: 128 });
    for (const t of tensors) writer.addTensorInfo(t.name, t.shape, 'F32');
    await writer.write(tensors);
    const file = await GgufFile.open(path);
    try {
      expect(file.alignment).toBe(128);
      expect(file.metadata.get('general.alignment')).toEqual({ type: 'UINT32', value: 128 });
      expect(file.dataOffset % 128).toBe(0);
      expect(file.tensorInfo('b').offset).toBe(128);
      expect([...(await file.readTensor('b'))]).toEqual([4]);
    } finally {
      await file.close();
    }
  });
});
