import { describe, expect, it } from 'vitest';
import {
  dequantize,
  dequantizeQ4_0,
  dequantizeQ4_K,
  dequantizeQ5_K,
  dequantizeQ6_K,
  dequantizeQ8_0,
} from '../../../src/formats/gguf/dequantize.ts';
import { Rng } from '../../../src/util/rng.ts';
import { f16 } from './gguf-bytes.ts';

/**
 * Known blocks: each block is assembled byte by byte from the struct layouts in ggml-common.h, and the
 * expected values come from the plain definition of the format (x = d * scale * q - dmin * min, with q
 * and the scales placed where the struct comments say), never from the code under test.
 */

const ONE_HALF = 0x3800; // f16 0.5
const ONE_EIGHTH = 0x3000; // f16 0.125

/** f16 bits of a normal number between 2^-6 and 2^2, with a random fraction. */
function randomF16Bits(rng: Rng): number {
  return ((9 + rng.int(8)) << 10) | rng.int(1024);
}

function le16(bits: number): number[] {
  return [bits & 0xff, bits >> 8];
}

function concat(blocks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(blocks.reduce((n, block) => n + block.length, 0));
  let at = 0;
  for (const block of blocks) {
    out.set(block, at);
    at += block.length;
  }
  return out;
}

describe('Q8_0', () => {
  // struct { ggml_half d; int8_t qs[32]; }
  function block(dBits: number, q: number[]): Uint8Array {
    return Uint8Array.from([...le16(dBits), ...q.map((v) => v & 0xff)]);
  }

  it('is d times each signed byte', () => {
    const q = Array.from({ length: 32 }, (_, j) => [-128, -127, -1, 0, 1, 2, 100, 120][j % 8] + (j >> 3));
    const out = new Float32Array(32);
    dequantizeQ8_0(block(ONE_HALF, q), out);
    expect(out[0]).toBe(-64); // -128 * 0.5
    expect(out[7]).toBe(60); // 120 * 0.5
    expect([...out]).toEqual(q.map((v) => v * 0.5));
  });

  it('steps 34 bytes per block', () => {
    const rng = new Rng(1);
    const blocks = Array.from({ length: 3 }, () => ({ d: randomF16Bits(rng), q: Array.from({ length: 32 }, () => rng.int(256) - 128) }));
    const out = dequantize('Q8_0', concat(blocks.map((b) => block(b.d, b.q))));
    const expected = blocks.flatMap((b) => b.q.map((v) => v * f16(b.d)));
    expect(out).toEqual(Float32Array.from(expected));
  });
});

describe('Q4_0', () => {
  // struct { ggml_half d; uint8_t qs[16]; }: value j in the low nibble of byte j, value j + 16 in its high nibble
  function block(dBits: number, q: number[]): Uint8Array {
    return Uint8Array.from([...le16(dBits), ...Array.from({ length: 16 }, (_, j) => q[j] | (q[j + 16] << 4))]);
  }

  it('is d times (q - 8), low nibbles first', () => {
    const q = Array.from({ length: 32 }, (_, j) => (j < 16 ? j : 31 - j));
    const out = new Float32Array(32);
    dequantizeQ4_0(block(0x3400, q), out); // d = 0.25
    expect(out[0]).toBe(-2); // (0 - 8) * 0.25
    expect(out[15]).toBe(1.75); // (15 - 8) * 0.25
    expect(out[16]).toBe(1.75); // q[16] = 15
    expect([...out]).toEqual(q.map((v) => (v - 8) * 0.25));
  });

  it('steps 18 bytes per block', () => {
    const rng = new Rng(2);
    const blocks = Array.from({ length: 3 }, () => ({ d: randomF16Bits(rng), q: Array.from({ length: 32 }, () => rng.int(16)) }));
    const out = dequantize('Q4_0', concat(blocks.map((b) => block(b.d, b.q))));
    expect(out).toEqual(Float32Array.from(blocks.flatMap((b) => b.q.map((v) => (v - 8) * f16(b.d)))));
  });
});

/** A K-quant super-block of 8 sub-blocks of 32 with 6-bit scales and mins. */
interface KBlock {
  d: number;
  dmin: number;
  scales: number[];
  mins: number[];
  /** 256 quants, sub-block s holding q[32 s .. 32 s + 31]. */
  q: number[];
}

function randomKBlock(rng: Rng, bits: number): KBlock {
  return {
    d: randomF16Bits(rng),
    dmin: randomF16Bits(rng),
    scales: Array.from({ length: 8 }, () => rng.int(64)),
    mins: Array.from({ length: 8 }, () => rng.int(64)),
    q: Array.from({ length: 256 }, () => rng.int(2 ** bits)),
  };
}

/**
 * The 12 scale bytes: bytes 0..3 hold scales 0..3 in their low 6 bits and the top 2 bits of scales 4..7 in
 * bits 6..7; bytes 4..7 the same for mins; bytes 8..11 hold the low 4 bits of scale 4 + i (low nibble) and
 * min 4 + i (high nibble).
 */
function packScales(scales: number[], mins: number[]): number[] {
  const bytes = new Array<number>(12).fill(0);
  for (let i = 0; i < 4; i++) {
    bytes[i] = scales[i] | ((scales[i + 4] >> 4) << 6);
    bytes[i + 4] = mins[i] | ((mins[i + 4] >> 4) << 6);
    bytes[i + 8] = (scales[i + 4] & 0x0f) | ((mins[i + 4] & 0x0f) << 4);
  }
  return bytes;
}

/** 128 bytes of nibbles: sub-blocks 2k and 2k + 1 share bytes 32k..32k+31, the even one in the low nibbles. */
function packNibbles(q: number[]): number[] {
  return Array.from({ length: 128 }, (_, i) => {
    const pair = i >> 5;
    const l = i & 31;
    return (q[64 * pair + l] & 0x0f) | ((q[64 * pair + 32 + l] & 0x0f) << 4);
  });
}

function expectedK(block: KBlock): number[] {
  return block.q.map((q, i) => f16(block.d) * block.scales[i >> 5] * q - f16(block.dmin) * block.mins[i >> 5]);
}

describe('Q4_K', () => {
  // struct { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qs[128]; }
  const pack = (b: KBlock) => Uint8Array.from([...le16(b.d), ...le16(b.dmin), ...packScales(b.scales, b.mins), ...packNibbles(b.q)]);

  it('decodes a block with chosen scales, mins and nibbles', () => {
    const block: KBlock = {
      d: ONE_HALF,
      dmin: ONE_EIGHTH,
      // values above 15 exercise the 2 high bits stored apart for sub-blocks 4..7
      scales: [1, 2, 3, 4, 33, 45, 63, 17],
      mins: [0, 5, 10, 15, 20, 40, 63, 31],
      q: Array.from({ length: 256 }, (_, i) => (i * 7) % 16),
    };
    const out = new Float32Array(256);
    dequantizeQ4_K(pack(block), out);
    // by hand: element 1 is in sub-block 0 (scale 1, min 0), q = 7: 0.5 * 1 * 7 - 0.125 * 0
    expect(out[1]).toBe(3.5);
    // element 32 * 6 + 3 = 195: sub-block 6 (scale 63, min 63), q = (195 * 7) % 16 = 5: 0.5 * 63 * 5 - 0.125 * 63
    expect(out[195]).toBe(149.625);
    // element 32 * 4: sub-block 4 (scale 33, min 20), q = (128 * 7) % 16 = 0: -0.125 * 20
    expect(out[128]).toBe(-2.5);
    expect(out).toEqual(Float32Array.from(expectedK(block)));
  });

  it('decodes consecutive random super-blocks of 144 bytes', () => {
    const rng = new Rng(3);
    const blocks = Array.from({ length: 3 }, () => randomKBlock(rng, 4));
    expect(dequantize('Q4_K', concat(blocks.map(pack)))).toEqual(Float32Array.from(blocks.flatMap(expectedK)));
  });
});

describe('Q5_K', () => {
  // struct { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; }
  // the fifth bit of q in sub-block s, position l, is bit s of qh[l]
  const packHighBits = (q: number[]) =>
    Array.from({ length: 32 }, (_, l) => {
      let byte = 0;
      for (let s = 0; s < 8; s++) byte |= (q[32 * s + l] >> 4) << s;
      return byte;
    });
  const pack = (b: KBlock) =>
    Uint8Array.from([...le16(b.d), ...le16(b.dmin), ...packScales(b.scales, b.mins), ...packHighBits(b.q), ...packNibbles(b.q)]);

  it('decodes a block with chosen scales and 5-bit quants', () => {
    const block: KBlock = {
      d: ONE_HALF,
      dmin: ONE_EIGHTH,
      scales: [2, 0, 63, 16, 17, 32, 48, 63],
      mins: [1, 63, 0, 8, 16, 24, 33, 62],
      q: Array.from({ length: 256 }, (_, i) => (i * 11) % 32),
    };
    const out = new Float32Array(256);
    dequantizeQ5_K(pack(block), out);
    // element 3: sub-block 0 (scale 2, min 1), q = 33 % 32 = 1: 0.5 * 2 * 1 - 0.125
    expect(out[3]).toBe(0.875);
    // element 230: sub-block 7 (scale 63, min 62), q = 2530 % 32 = 2: 0.5 * 63 * 2 - 0.125 * 62
    expect(out[230]).toBe(55.25);
    expect(out).toEqual(Float32Array.from(expectedK(block)));
  });

  it('decodes consecutive random super-blocks of 176 bytes', () => {
    const rng = new Rng(4);
    const blocks = Array.from({ length: 3 }, () => randomKBlock(rng, 5));
    expect(dequantize('Q5_K', concat(blocks.map(pack)))).toEqual(Float32Array.from(blocks.flatMap(expectedK)));
  });
});

describe('Q6_K', () => {
  /** 16 sub-blocks of 16 with signed 8-bit scales; q in 0..63 stands for q - 32. */
  interface Q6Block {
    d: number;
    scales: number[];
    q: number[];
  }

  /**
   * struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d; }. Each half of 128 values
   * uses 64 bytes of ql and 32 of qh: value l + 32 k (k = 0..3) keeps its low 4 bits in ql[l + 32 (k & 1)]
   * (low nibble for k < 2, high nibble otherwise) and its top 2 bits in bits 2k..2k+1 of qh[l].
   */
  function pack(block: Q6Block): Uint8Array {
    const ql = new Array<number>(128).fill(0);
    const qh = new Array<number>(64).fill(0);
    for (let half = 0; half < 2; half++) {
      for (let l = 0; l < 32; l++) {
        for (let k = 0; k < 4; k++) {
          const q = block.q[128 * half + 32 * k + l];
          ql[64 * half + l + 32 * (k & 1)] |= (q & 0x0f) << (k < 2 ? 0 : 4);
          qh[32 * half + l] |= (q >> 4) << (2 * k);
        }
      }
    }
    return Uint8Array.from([...ql, ...qh, ...block.scales.map((s) => s & 0xff), ...le16(block.d)]);
  }

  const expected = (b: Q6Block) => b.q.map((q, i) => f16(b.d) * b.scales[i >> 4] * (q - 32));

  it('decodes a block with chosen signed scales and 6-bit quants', () => {
    const block: Q6Block = {
      d: 0x2c00, // 0.0625
      scales: [1, -1, 127, -128, 5, -7, 64, 3, 0, 100, -100, 9, -9, 17, 33, -2],
      q: Array.from({ length: 256 }, (_, i) => (i * 13) % 64),
    };
    const out = new Float32Array(256);
    dequantizeQ6_K(pack(block), out);
    // element 0: scale 1, q = 0: 0.0625 * 1 * (0 - 32)
    expect(out[0]).toBe(-2);
    // element 50: sub-block 3 (scale -128), q = 650 % 64 = 10: 0.0625 * -128 * (10 - 32)
    expect(out[50]).toBe(176);
    // element 200: sub-block 12 (scale -9), q = 2600 % 64 = 40: 0.0625 * -9 * 8
    expect(out[200]).toBe(-4.5);
    expect(out).toEqual(Float32Array.from(expected(block)));
  });

  it('decodes consecutive random super-blocks of 210 bytes', () => {
    const rng = new Rng(5);
    const blocks = Array.from({ length: 3 }, () => ({
      d: randomF16Bits(rng),
      scales: Array.from({ length: 16 }, () => rng.int(256) - 128),
      q: Array.from({ length: 256 }, () => rng.int(64)),
    }));
    expect(dequantize('Q6_K', concat(blocks.map(pack)))).toEqual(Float32Array.from(blocks.flatMap(expected)));
  });
});

describe('float types', () => {
  it('reads F32, F16 and BF16 little-endian, also from unaligned views', () => {
    const f32 = new Uint8Array(9);
    new DataView(f32.buffer).setFloat32(1, -1.5, true);
    new DataView(f32.buffer).setFloat32(5, 3.25, true);
    expect([...dequantize('F32', f32.subarray(1))]).toEqual([-1.5, 3.25]);
    const half = Uint8Array.from([0, ...le16(0x3c00), ...le16(0xc000), ...le16(0x7c00)]);
    expect([...dequantize('F16', half.subarray(1))]).toEqual([1, -2, Infinity]);
    const bf16 = Uint8Array.from([0, ...le16(0x3f80), ...le16(0xc040)]);
    expect([...dequantize('BF16', bf16.subarray(1))]).toEqual([1, -3]);
  });

  it('rejects a byte count that is not whole blocks', () => {
    expect(() => dequantize('Q8_0', new Uint8Array(33))).toThrow(/whole number of Q8_0 blocks/);
  });
});
