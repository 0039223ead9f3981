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

/** tinyConfig's overrides for a Gemma 2: GeGLU, (1 + w) and sandwich norms, scaled embeddings, both caps (small, so they bite), a window in layer 0. */
export const TINY_GEMMA2: Partial<ModelConfigInput> = {
  modelType: 'gemma2',
  attentionBias: false,
  qkNorm: false,
  tieWordEmbeddings: true,
  hiddenActivation: 'gelu_tanh',
  normWeightOffset: 1,
  embeddingScale: 4,
  sandwichNorms: true,
  queryPreAttnScalar: 6,
  attnLogitSoftcap: 1.5,
  finalLogitSoftcap: 2,
  slidingWindow: 3,
  layerTypes: ['sliding', 'full'],
};

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
