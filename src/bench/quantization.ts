/**
 * What each GGUF export type loses: the benchmark model (random weights, rows of whole 256-value super-blocks
 * so the K-quants are not replaced by their fallbacks) written as each type, read back, and its next-token
 * distributions compared with the float32 model's over a sequence.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { exportGguf, loadGgufModel } from '../model-files/gguf-model.ts';
import type { GgufExportType } from '../formats/gguf-quant-mix.ts';
import { CausalLM } from '../model/causal-lm.ts';
import { countParameters, resolveModelConfig } from '../model/config.ts';
import { createByteLevelTokenizer } from '../tokenizer/byte-level.ts';
import { BENCH_MODEL } from './training.ts';

export const QUANTIZATION_BENCH_TYPES: GgufExportType[] = ['F16', 'Q8_0', 'Q6_K', 'Q5_K_M', 'Q4_K_M', 'Q4_0'];

export interface QuantizationBenchResult {
  parameters: number;
  positions: number;
  types: {
    type: GgufExportType;
    /** File bits per parameter. */
    bitsPerWeight: number;
    /** Mean KL(float32 || quantized) over the positions, nats. */
    meanKl: number;
    /** Largest |p - q| of any token at any position. */
    maxProbabilityError: number;
    /** Share of positions whose most likely token is the float32 model's. */
    top1Agreement: number;
    exportSeconds: number;
  }[];
}

export async function benchQuantization(positions = 128): Promise<QuantizationBenchResult> {
  const config = resolveModelConfig({ ...BENCH_MODEL, intermediateSize: 768 });
  const model = CausalLM.init(config, { seed: 3, std: 0.05 });
  const ids = Array.from({ length: positions }, (_, i) => (i * 7919 + 13) % config.vocabSize);
  const logProbs = (m: CausalLM) => tf.tidy(() => tf.logSoftmax(tf.squeeze(m.forward(tf.tensor2d(ids, [1, positions], 'int32')), [0])) as tf.Tensor2D);
  const exact = logProbs(model);
  const dir = await mkdtemp(join(tmpdir(), 'slm-bench-quant-'));
  const tokenizer = { json: createByteLevelTokenizer().toJSON() };
  try {
    const types: QuantizationBenchResult['types'] = [];
    for (const type of QUANTIZATION_BENCH_TYPES) {
      const path = join(dir, `${type}.gguf`);
      const started = performance.now();
      await exportGguf(model, tokenizer, path, { type });
      const exportSeconds = (performance.now() - started) / 1000;
      const quantized = (await loadGgufModel(path)).model;
      const approximate = logProbs(quantized);
      quantized.dispose();
      const [meanKl, maxProbabilityError, top1Agreement] = tf.tidy(() => {
        const p = tf.exp(exact);
        const kl = tf.mean(tf.sum(tf.mul(p, tf.sub(exact, approximate)), 1));
        const error = tf.max(tf.abs(tf.sub(p, tf.exp(approximate))));
        const agreement = tf.mean(tf.cast(tf.equal(tf.argMax(exact, 1), tf.argMax(approximate, 1)), 'float32'));
        return [kl, error, agreement].map((t) => t.dataSync()[0]);
      });
      approximate.dispose();
      types.push({ type, bitsPerWeight: ((await stat(path)).size * 8) / countParameters(config), meanKl, maxProbabilityError, top1Agreement, exportSeconds });
    }
    return { parameters: countParameters(config), positions, types };
  } finally {
    exact.dispose();
    model.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}
