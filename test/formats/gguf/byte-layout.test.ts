import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgufWriter } from '../../../src/formats/gguf/writer.ts';

/**
 * Checks the writer's bytes against offsets worked out by hand from docs/gguf.md, standing in for an
 * independent reader (none is installed). The file: metadata general.architecture = "llama", a F32 tensor
 * "weight" of PyTorch shape [2, 3] and a F32 tensor "bias" of shape [3].
 */
let dir: string;
let bytes: Uint8Array;
let view: DataView;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slm-gguf-layout-'));
  const path = join(dir, 'tiny.gguf');
  const weight = { name: 'weight', shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) };
  const bias = { name: 'bias', shape: [3], data: Float32Array.of(-1, -2, -3) };
  await new GgufWriter(path)
    .addString('general.architecture', 'llama')
    .addTensorInfo('weight', [2, 3], 'F32')
    .addTensorInfo('bias', [3], 'F32')
    .write([weight, bias]);
  bytes = new Uint8Array(await readFile(path));
  view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const u32 = (at: number) => view.getUint32(at, true);
const u64 = (at: number) => Number(view.getBigUint64(at, true));
const text = (at: number, length: number) => new TextDecoder().decode(bytes.subarray(at, at + length));
const zeros = (from: number, to: number) => [...bytes.subarray(from, to)].every((b) => b === 0);

describe('the byte layout of a tiny file', () => {
  it('starts with magic, version and the two u64 counts', () => {
    expect(text(0, 4)).toBe('GGUF');
    expect([...bytes.subarray(0, 4)]).toEqual([0x47, 0x47, 0x55, 0x46]);
    expect(u32(4)).toBe(3); // version
    expect(u64(8)).toBe(2); // tensor count
    expect(u64(16)).toBe(1); // metadata count: F32 needs no quantization version
  });

  it('has the string key/value at bytes 24..69', () => {
    expect(u64(24)).toBe(20); // key length
    expect(text(32, 20)).toBe('general.architecture'); // 32..52
    expect(u32(52)).toBe(8); // value type STRING
    expect(u64(56)).toBe(5); // value length
    expect(text(64, 5)).toBe('llama'); // 64..69
  });

  it('has the tensor infos at bytes 69..151 with dims reversed and padded offsets', () => {
    expect(u64(69)).toBe(6);
    expect(text(77, 6)).toBe('weight'); // 77..83
    expect(u32(83)).toBe(2); // n_dims
    expect([u64(87), u64(95)]).toEqual([3, 2]); // fastest-varying first: PyTorch [2, 3] reversed
    expect(u32(103)).toBe(0); // F32
    expect(u64(107)).toBe(0); // offset in the data section
    expect(u64(115)).toBe(4);
    expect(text(123, 4)).toBe('bias'); // 123..127
    expect(u32(127)).toBe(1);
    expect(u64(131)).toBe(3);
    expect(u32(139)).toBe(0);
    expect(u64(143)).toBe(32); // 24 bytes of weight, padded to 32
  });

  it('pads to 32 before the data, which starts at byte 160', () => {
    expect(zeros(151, 160)).toBe(true);
    expect([...new Float32Array(bytes.slice(160, 184).buffer)]).toEqual([1, 2, 3, 4, 5, 6]);
    expect(zeros(184, 192)).toBe(true);
    expect([...new Float32Array(bytes.slice(192, 204).buffer)]).toEqual([-1, -2, -3]);
    expect(zeros(204, 224)).toBe(true);
    expect(bytes.length).toBe(224);
  });
});
