import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../util/rng.ts';
import type { CausalLM } from './causal-lm.ts';
import { KVCache } from './kv-cache.ts';
import type { Projection } from './layers.ts';
import { sampleToken, validateSampling, type SamplingOptions } from './sampling.ts';

export interface GenerateOptions extends SamplingOptions {
  maxTokens: number;
  seed: number;
  /** Generation stops after any of these ids (the model's EOS by default). */
  stopIds?: number[];
  /** Sees the logits each new token was chosen from (a teacher records its distribution). */
  onLogits?: (logits: Float32Array) => void;
  /** The projections to run with (a LoRA student's, with its adapters); the model's own by default. */
  project?: Projection;
}

/**
 * Continues a prompt token by token with a KV cache: one forward pass over the prompt, then one position
 * per step. Yields each new id as soon as it is chosen.
 */
export async function* generateTokens(model: CausalLM, promptIds: number[], options: GenerateOptions): AsyncGenerator<number> {
  validateSampling(options);
  if (promptIds.length === 0) throw new RangeError('generate: the prompt must contain at least one token');
  const stopIds = new Set(options.stopIds ?? (model.config.eosTokenId === null ? [] : [model.config.eosTokenId]));
  const rng = new Rng(options.seed);
  const cache = new KVCache(model.config.numLayers);
  try {
    let input = promptIds;
    for (let produced = 0; produced < options.maxTokens; produced++) {
      if (cache.length + input.length > model.config.maxPositionEmbeddings) break;
      const logits = await lastLogits(model, input, cache, options.project);
      options.onLogits?.(logits);
      const next = sampleToken(logits, options, rng);
      yield next;
      if (stopIds.has(next)) break;
      input = [next];
    }
  } finally {
    cache.dispose();
  }
}

async function lastLogits(model: CausalLM, ids: number[], cache: KVCache, project?: Projection): Promise<Float32Array> {
  const last = tf.tidy(() => {
    const logits = model.forward(tf.tensor2d(ids, [1, ids.length], 'int32'), cache, project); // [1, T, V]
    return tf.reshape(tf.slice(logits, [0, ids.length - 1, 0], [1, 1, -1]), [-1]);
  });
  const values = (await last.data()) as Float32Array;
  last.dispose();
  return values;
}
