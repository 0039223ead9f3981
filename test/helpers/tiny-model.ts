import * as tf from '@tensorflow/tfjs-core';
import { resolveModelConfig, type ModelConfigInput } from '../../src/model/config.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { Rng } from '../../src/util/rng.ts';

/** A model small enough for finite differences and exhaustive comparisons, with GQA, biases and q/k norms on. */
export function tinyConfig(overrides: Partial<ModelConfigInput> = {}) {
  return resolveModelConfig({
    vocabSize: 23,
    hiddenSize: 16,
    intermediateSize: 24,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    attentionBias: true,
    qkNorm: true,
    tieWordEmbeddings: false,
    ...overrides,
  });
}

export function tinyModel(overrides: Partial<ModelConfigInput> = {}, seed = 7): CausalLM {
  return CausalLM.init(tinyConfig(overrides), { seed, std: 0.3 });
}

export function randomIds(rng: Rng, batch: number, length: number, vocab: number): tf.Tensor2D {
  return tf.tensor2d(
    Array.from({ length: batch * length }, () => rng.int(vocab)),
    [batch, length],
    'int32',
  );
}
