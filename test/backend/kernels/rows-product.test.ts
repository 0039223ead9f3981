import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/backend/index.ts';
import { QUANT_ROW_FORMATS, quantRowWords, type QuantRowFormat } from '../../../src/backend/kernels/rows-product.ts';
import { GGML_BLOCK_LAYOUT } from '../../../src/formats/gguf/constants.ts';
import { dequantize } from '../../../src/formats/gguf/dequantize.ts';
import { quantize } from '../../../src/formats/gguf/quantize.ts';
import { bf16RowsProduct, f32RowsProduct, quantRowsProduct } from '../../../src/model/fused-ops.ts';
import { Rng } from '../../../src/util/rng.ts';

// Two threads: products of a million multiply-adds and more are shared with a helper thread.
await initBackend('wasm', { threads: 2 });

const NATIVE = join(import.meta.dirname, '../../../src/backend/kernels/native');

/** Random weights [rows, cols] as raw BF16 (the top half of a float32), and their values. */
function bf16Weights(rows: number, cols: number, seed: number): { raw: Uint16Array; values: Float64Array } {
  const rng = new Rng(seed);
  const raw = new Uint16Array(rows * cols);
  const values = new Float64Array(rows * cols);
  const word = new Uint32Array(1);
  const float = new Float32Array(word.buffer);
  for (let i = 0; i < raw.length; i++) {
    float[0] = rng.normal() * 0.05;
    raw[i] = word[0] >>> 16;
    word[0] = raw[i] << 16;
    values[i] = float[0];
  }
  return { raw, values };
}

function randomRows(m: number, cols: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: m * cols }, () => rng.normal());
}

/** x [M, cols] times w [rows, cols]^T in double precision. */
function reference(x: Float32Array, w: Float64Array, m: number, rows: number, cols: number): Float64Array {
  const y = new Float64Array(m * rows);
  for (let i = 0; i < m; i++) for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[i * rows + r] += x[i * cols + c] * w[r * cols + c];
  return y;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, relative = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(relative * scale);
}

describe('the weight-rows products on wasm', () => {
  it.each([
    ['one input row, rows not a multiple of 4', 1, 10, 24],
    ['one input row, a real model width', 1, 64, 896],
    ['several input rows', 3, 7, 40],
    ['a decoding batch', 16, 12, 128],
  ])('matches a double-precision product: %s', (_name, m, rows, cols) => {
    const { raw, values } = bf16Weights(rows, cols, rows + cols);
    const x = randomRows(m, cols, m);
    const w = tf.tensor2d(new Int32Array(raw.buffer), [rows, cols / 2], 'int32');
    const xs = tf.tensor2d(x, [m, cols]);
    const y = bf16RowsProduct(xs, w);
    expect(y.shape).toEqual([m, rows]);
    expectClose(y.dataSync(), reference(x, values, m, rows, cols));
    tf.dispose([w, xs, y]);
  });

  it.each([
    ['one input row, rows not a multiple of 4', 1, 10, 24],
    ['several input rows', 5, 9, 40],
  ])('matches a double-precision product with float32 rows: %s', (_name, m, rows, cols) => {
    const { values } = bf16Weights(rows, cols, rows * cols);
    const x = randomRows(m, cols, m + 1);
    const w = tf.tensor2d(Float32Array.from(values), [rows, cols]);
    const xs = tf.tensor2d(x, [m, cols]);
    const y = f32RowsProduct(xs, w);
    expect(y.shape).toEqual([m, rows]);
    expectClose(y.dataSync(), reference(x, values, m, rows, cols));
    tf.dispose([w, xs, y]);
  });

  it('writes only its output: tensors made before and after keep their values', () => {
    const before = tf.fill([4096], 7);
    const { raw } = bf16Weights(8, 16, 1);
    const w = tf.tensor2d(new Int32Array(raw.buffer), [8, 8], 'int32');
    const x = tf.tensor2d(randomRows(5, 16, 2), [5, 16]);
    const after = tf.fill([4096], -3);
    const y = bf16RowsProduct(x, w);
    expect(before.dataSync().every((v) => v === 7)).toBe(true);
    expect(after.dataSync().every((v) => v === -3)).toBe(true);
    tf.dispose([before, w, x, after, y]);
  });

  it('refuses rows that are not a multiple of 8 values, or weights of the wrong type', () => {
    const x = tf.zeros([1, 12]) as tf.Tensor2D;
    expect(() => bf16RowsProduct(x, tf.zeros([4, 6], 'int32') as tf.Tensor2D)).toThrow(/multiple of 8/);
    expect(() => f32RowsProduct(x, tf.zeros([4, 12]) as tf.Tensor2D)).toThrow(/multiple of 8/);
    const x16 = tf.zeros([1, 16]) as tf.Tensor2D;
    expect(() => bf16RowsProduct(x16, tf.zeros([4, 8]) as tf.Tensor2D)).toThrow(/int32/);
    expect(() => f32RowsProduct(x16, tf.zeros([4, 16], 'int32') as tf.Tensor2D)).toThrow(/float32/);
  });

  it.each([
    ['plain', 'rows-product.wasm', false],
    ['shared', 'rows-product-shared.wasm', true],
  ])('the %s-memory build computes the same products on a memory of its own', (_name, file, shared) => {
    const [m, rows, cols] = [2, 5, 16];
    const memory = new WebAssembly.Memory({ initial: 2, maximum: shared ? 65536 : undefined, shared } as WebAssembly.MemoryDescriptor);
    const exports = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(join(NATIVE, file))), { env: { memory } }).exports as {
      bf16_rows_product: (w: number, x: number, y: number, m: number, rows: number, cols: number, scratch: number, first: number, last: number) => void;
      f32_rows_product: (w: number, x: number, y: number, m: number, rows: number, cols: number, scratch: number, first: number, last: number) => void;
    };
    const { raw, values } = bf16Weights(rows, cols, 3);
    const x = randomRows(m, cols, 4);
    const [wAt, xAt, yAt, scratchAt, w32At] = [1024, 4096, 8192, 12288, 16384];
    new Uint16Array(memory.buffer, wAt, raw.length).set(raw);
    new Float32Array(memory.buffer, w32At, values.length).set(values);
    new Float32Array(memory.buffer, xAt, x.length).set(x);
    const expected = reference(x, values, m, rows, cols);
    exports.bf16_rows_product(wAt, xAt, yAt, m, rows, cols, scratchAt, 0, rows);
    expectClose(new Float32Array(memory.buffer, yAt, m * rows).slice(), expected);
    exports.f32_rows_product(w32At, xAt, yAt, m, rows, cols, 0, 0, rows);
    expectClose(new Float32Array(memory.buffer, yAt, m * rows), expected);
    expect(new Uint8Array(memory.buffer, 0, wAt).every((b) => b === 0)).toBe(true); // nothing below the buffers it was given
  });
});

/** Rows of `cols` random values (one row of tiny ones: their scales are subnormal halves) as `format`, padded to words. */
function quantizedRows(format: QuantRowFormat, rows: number, cols: number, seed: number): { words: Int32Array; values: Float64Array } {
  const rng = new Rng(seed);
  const words = quantRowWords(format, cols);
  const padded = new Uint8Array(rows * words * 4);
  const values = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const scale = r === 1 ? 2e-4 : 0.05;
    const row = quantize(format, Float32Array.from({ length: cols }, () => rng.normal() * scale));
    padded.set(row, r * words * 4);
    values.set(dequantize(format, row), r * cols);
  }
  return { words: new Int32Array(padded.buffer), values };
}

describe('the quantized weight-rows product on wasm', () => {
  it('knows the block layouts ggml gives its formats', () => {
    for (const [format, { blockSize, blockBytes }] of Object.entries(QUANT_ROW_FORMATS)) {
      expect({ blockSize, blockBytes }, format).toEqual({ blockSize: GGML_BLOCK_LAYOUT[format as QuantRowFormat].blockSize, blockBytes: GGML_BLOCK_LAYOUT[format as QuantRowFormat].typeSize });
    }
  });

  it.each([
    ['Q8_0', 96], // 3 blocks: 102 bytes a row, padded to 104
    ['Q8_0', 256],
    ['Q4_K', 512],
    ['Q6_K', 256], // 210 bytes a row, padded to 212
    ['Q6_K', 512],
    ['Q5_0', 96],
    ['Q5_0', 896], // Qwen2.5-0.5B's hidden size, which Q4_K_M stores as Q5_0
  ] as const)('multiplies %s rows of %i values as ggml dequantizes them, for one input row and several', (format, cols) => {
    const rows = 7;
    const { words, values } = quantizedRows(format, rows, cols, 5);
    const w = tf.tensor2d(words, [rows, quantRowWords(format, cols)], 'int32');
    for (const m of [1, 3]) {
      const x = randomRows(m, cols, 6 + m);
      const y = tf.tidy(() => quantRowsProduct(tf.tensor2d(x, [m, cols]), w, format));
      expect(y.shape).toEqual([m, rows]);
      expectClose(y.dataSync(), reference(x, values, m, rows, cols));
      // The tiny row on its own scale (subnormal half-precision scales): its values must not be flushed to zero.
      const tiny = reference(x, values, m, rows, cols).filter((_, i) => i % rows === 1);
      expect(tiny.every((v) => v !== 0)).toBe(true);
      expectClose(y.dataSync().filter((_, i) => i % rows === 1), tiny);
      y.dispose();
    }
    w.dispose();
  });

  it('refuses rows whose words do not match the format and width', () => {
    const x = tf.zeros([1, 256]) as tf.Tensor2D;
    expect(() => quantRowsProduct(x, tf.zeros([4, 10], 'int32') as tf.Tensor2D, 'Q4_K')).toThrow(/Q4_K rows as int32 \[rows, 36\]/);
    expect(() => quantRowsProduct(tf.zeros([1, 100]) as tf.Tensor2D, tf.zeros([4, 10], 'int32') as tf.Tensor2D, 'Q8_0')).toThrow(/multiple of 32/);
  });
});

describe('the weight-rows products shared between threads', () => {
  // 2048 x 1024 weights: two million multiply-adds a row of x, above the size at which helpers join.
  const [rows, cols] = [2048, 1024];

  it.each([1, 3])('give the double-precision products for %i input row(s), BF16, float32 and Q4_K alike', (m) => {
    const x = randomRows(m, cols, 40 + m);
    const xs = tf.tensor2d(x, [m, cols]);
    const { raw, values } = bf16Weights(rows, cols, 41);
    const expected = reference(x, values, m, rows, cols);
    const bf16 = tf.tensor2d(new Int32Array(raw.buffer), [rows, cols / 2], 'int32');
    const f32 = tf.tensor2d(Float32Array.from(values), [rows, cols]);
    const quant = quantizedRows('Q4_K', rows, cols, 42);
    const q4k = tf.tensor2d(quant.words, [rows, quantRowWords('Q4_K', cols)], 'int32');
    const outputs = [bf16RowsProduct(xs, bf16), f32RowsProduct(xs, f32), quantRowsProduct(xs, q4k, 'Q4_K')];
    expectClose(outputs[0].dataSync(), expected);
    expectClose(outputs[1].dataSync(), expected);
    expectClose(outputs[2].dataSync(), reference(x, quant.values, m, rows, cols));
    tf.dispose([xs, bf16, f32, q4k, ...outputs]);
  });
});
