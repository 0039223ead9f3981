import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { benchChunkedLossMemory, benchDistillation, randomSoftLabels } from '../../src/bench/distillation.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { Rng } from '../../src/util/rng.ts';

await initBackend('wasm');

describe('randomSoftLabels', () => {
  it('gives k distinct ids in range with descending log-probabilities that leave some mass outside', () => {
    const [positions, k, vocab] = [50, 7, 40];
    const { k: stored, ids, logprobs } = randomSoftLabels(new Rng(5), positions, k, vocab);
    expect(stored).toBe(k);
    expect(ids).toHaveLength(positions * k);
    expect(logprobs).toHaveLength(positions * k);
    for (let p = 0; p < positions; p++) {
      const row = Array.from(logprobs.subarray(p * k, (p + 1) * k));
      const rowIds = Array.from(ids.subarray(p * k, (p + 1) * k));
      expect(new Set(rowIds).size).toBe(k);
      for (const id of rowIds) expect(id >= 0 && id < vocab).toBe(true);
      for (const x of row) expect(x).toBeLessThanOrEqual(0);
      for (let j = 1; j < k; j++) expect(row[j]).toBeLessThanOrEqual(row[j - 1]);
      // The top k hold between 50% and 95% of the mass, in float64 over the stored float32 values.
      const mass = row.reduce((sum, x) => sum + Math.exp(x), 0);
      expect(Math.log(mass)).toBeLessThanOrEqual(0);
      expect(mass).toBeGreaterThanOrEqual(0.5 - 1e-6);
      expect(mass).toBeLessThanOrEqual(0.95 + 1e-6);
    }
  });

  it('rejects a k the vocabulary cannot hold', () => {
    expect(() => randomSoftLabels(new Rng(1), 1, 9, 8)).toThrow(/k must be an integer in \[1, vocab = 8\], got 9/);
  });
});

describe('benchDistillation', () => {
  it('trains in every mode with finite losses, and KD only where there is a teacher', async () => {
    const config = resolveModelConfig({ vocabSize: 48, hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, tieWordEmbeddings: true });
    const tensorsBefore = tf.memory().numTensors;
    const result = await benchDistillation({ config, batchSize: 2, seqLen: 6, steps: 2, k: 5 });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    for (const mode of [result.ce, result.topK, result.full]) {
      expect(Number.isFinite(mode.loss)).toBe(true);
      expect(mode.tokensPerSecond).toBeGreaterThan(0);
      expect(mode.tokensPerSecond * mode.secondsPerStep).toBeCloseTo(2 * 6, 6);
      expect(mode.ratioToCe).toBeCloseTo(mode.tokensPerSecond / result.ceTokensPerSecond, 9);
    }
    expect(result.ce.kd).toBeNull();
    // Forward KL of two different distributions is positive.
    expect(result.topK.kd).toBeGreaterThan(0);
    expect(result.full.kd).toBeGreaterThan(0);
  });
});

describe('benchChunkedLossMemory', () => {
  it('agrees with the unchunked loss and needs less memory when the vocabulary is many chunks wide', async () => {
    const shape = { rows: 64, hidden: 8, vocab: 4096, rowChunk: 16, vocabChunk: 256 };
    const result = await benchChunkedLossMemory(shape);
    const { chunked, unchunked } = result;
    expect(unchunked).not.toBeNull();
    expect(chunked.loss).toBeGreaterThan(0);
    expect(Math.abs(chunked.loss - unchunked!.loss)).toBeLessThan(1e-4 * unchunked!.loss);
    expect(result.lossAbsDifference).toBe(Math.abs(chunked.loss - unchunked!.loss));
    expect(result.gradMaxAbsDifference).toBeLessThan(1e-5);
    // One [rows, vocab] float32 tensor is 1 MiB; the unchunked loss holds several, a chunk is 16 KiB.
    const logitsBytes = shape.rows * shape.vocab * 4;
    expect(unchunked!.peak.heapBytes).toBeGreaterThan(2 * logitsBytes);
    expect(chunked.peak.heapBytes).toBeLessThan(logitsBytes / 2);
    expect(chunked.peak.countedBytes).toBeLessThan(unchunked!.peak.countedBytes);
  });

  it('peaks at the same tensor memory whatever the vocabulary', async () => {
    const shape = { rows: 64, hidden: 8, rowChunk: 16, vocabChunk: 256, unchunked: false };
    const [narrow, wide] = [await benchChunkedLossMemory({ ...shape, vocab: 1024 }), await benchChunkedLossMemory({ ...shape, vocab: 8192 })];
    expect(wide.chunked.peak.countedBytes).toBe(narrow.chunked.peak.countedBytes);
  });

  it('skips the unchunked loss when asked', async () => {
    const result = await benchChunkedLossMemory({ rows: 8, hidden: 4, vocab: 100, unchunked: false });
    expect(result.unchunked).toBeNull();
    expect(result.lossAbsDifference).toBeNull();
    expect(Number.isFinite(result.chunked.loss)).toBe(true);
  });
});
