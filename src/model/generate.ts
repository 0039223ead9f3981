import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../util/rng.ts';
import type { BatchLayout, CausalLM } from './causal-lm.ts';
import type { KVCache } from './kv-cache.ts';
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
  const stopIds = stopIdSet(model, options.stopIds);
  const rng = new Rng(options.seed);
  const cache = model.newCache(promptIds.length + options.maxTokens);
  const onDevice = choosesOnDevice(options, options.onLogits);
  try {
    let input = promptIds;
    for (let produced = 0; produced < options.maxTokens; produced++) {
      if (cache.length + input.length > model.config.maxPositionEmbeddings) break;
      const step = await lastPositions(model, [input], cache, options.project, undefined, onDevice);
      const next = step.ids ? step.ids[0] : sampleToken(step.logits, options, rng);
      if (step.logits) options.onLogits?.(step.logits);
      yield next;
      if (stopIds.has(next)) break;
      input = [next];
    }
  } finally {
    cache.dispose();
  }
}

export interface BatchGenerateOptions extends SamplingOptions {
  maxTokens: number;
  /** Row b samples with its own Rng(seed + b), so it draws what `generateTokens` with seed + b draws. */
  seed: number;
  /** Per-row seeds instead (a row then draws the same whatever batch it is in). */
  seeds?: readonly number[];
  /** Sees each row's new token and the logits it was chosen from (a teacher records its distribution). */
  onToken?: (row: number, id: number, logits: Float32Array) => void;
  /** A row ends after any of these ids, returned as its last id (the model's EOS by default). */
  stopIds?: number[];
  /** The projections to run with (a LoRA student's, with its adapters); the model's own by default. */
  project?: Projection;
  /** Fills the left padding of the shorter prompts: any id of the vocabulary, as no query attends to it. */
  padId: number;
  /**
   * A row also ends after the token for which this returns true; it gets the row's index among the
   * prompts and a copy of the row's new ids so far (an evaluator checks its stop strings here).
   */
  shouldStop?: (row: number, ids: number[]) => boolean;
}

/**
 * Continues several prompts at once with one KV cache. The prompts are padded on the left to the longest
 * and prefilled in one forward pass; then each step decodes one token for every row still running. A row
 * ends after a stop id (which it returns, as `generateTokens` yields it), when `shouldStop` says so, after
 * maxTokens ids, or when its next position would pass max_position_embeddings; ended rows leave the batch.
 * Returns the new ids of each prompt, in prompt order: greedy, what `generateTokens` gives for each alone.
 */
export async function generateBatch(model: CausalLM, prompts: number[][], options: BatchGenerateOptions): Promise<number[][]> {
  validateSampling(options);
  checkBatch(model, prompts, options.padId);
  const stopIds = stopIdSet(model, options.stopIds);
  const limit = model.config.maxPositionEmbeddings;
  const rngs = prompts.map((_, row) => new Rng(options.seeds?.[row] ?? options.seed + row));
  const outputs: number[][] = prompts.map(() => []);
  const ended = (row: number): boolean => {
    const ids = outputs[row];
    return (
      stopIds.has(ids[ids.length - 1]) ||
      ids.length >= options.maxTokens ||
      prompts[row].length + ids.length > limit ||
      (options.shouldStop?.(row, [...ids]) ?? false)
    );
  };

  if (options.maxTokens <= 0) return outputs;
  let rows = prompts.flatMap((prompt, row) => (prompt.length <= limit ? [row] : [])); // longer ones get nothing, as alone
  if (rows.length === 0) return outputs;
  const width = Math.max(...rows.map((row) => prompts[row].length));
  const padLeft = (row: number) => width - prompts[row].length;
  let input = rows.map((row) => [...new Array<number>(padLeft(row)).fill(options.padId), ...prompts[row]]);
  const onDevice = choosesOnDevice(options, options.onToken);
  const cache = model.newCache(width + options.maxTokens);
  try {
    while (rows.length > 0) {
      const step = await lastPositions(model, input, cache, options.project, { padLeft: rows.map(padLeft) }, onDevice);
      const V = model.config.vocabSize;
      const sampled = (logits: Float32Array, i: number, row: number) => {
        const rowLogits = logits.subarray(i * V, (i + 1) * V);
        const id = sampleToken(rowLogits, options, rngs[row]);
        options.onToken?.(row, id, rowLogits);
        return id;
      };
      rows.forEach((row, i) => outputs[row].push(step.ids ? step.ids[i] : sampled(step.logits, i, row)));
      const running = rows.flatMap((row, i) => (ended(row) ? [] : [i]));
      if (running.length < rows.length && running.length > 0) cache.keepRows(running);
      rows = running.map((i) => rows[i]);
      input = rows.map((row) => [outputs[row][outputs[row].length - 1]]);
    }
  } finally {
    cache.dispose();
  }
  return outputs;
}

function stopIdSet(model: CausalLM, stopIds: number[] | undefined): Set<number> {
  return new Set(stopIds ?? model.config.stopTokenIds);
}

function checkBatch(model: CausalLM, prompts: number[][], padId: number): void {
  prompts.forEach((prompt, row) => {
    if (prompt.length === 0) throw new RangeError(`generateBatch: prompt ${row} must contain at least one token`);
  });
  if (!Number.isInteger(padId) || padId < 0 || padId >= model.config.vocabSize) {
    throw new RangeError(`generateBatch: padId must be a token id in [0, ${model.config.vocabSize}), got ${padId}`);
  }
}

/** Each row's next token from its last position: its logits read back, or, greedy on the backend, its id alone. */
type Step = { ids: Int32Array; logits?: undefined } | { logits: Float32Array; ids?: undefined };

/**
 * Greedy decoding whose logits nobody reads takes the argmax on the backend: only B ids cross to the host
 * per step, not B x V logits (a GPU's read-back, where wasm only copies).
 */
function choosesOnDevice(options: SamplingOptions, logitsReader: unknown): boolean {
  return options.temperature === 0 && logitsReader === undefined;
}

/**
 * The last position of each row [B, T] of ids: its logits [B * V], rows one after another, or with
 * `onDevice` their argmax [B]. Only the last position goes through the output head: a prompt's other
 * positions would cost T x V products for nothing.
 */
async function lastPositions(
  model: CausalLM,
  ids: number[][],
  cache: KVCache,
  project: Projection | undefined,
  layout: BatchLayout | undefined,
  onDevice: boolean,
): Promise<Step> {
  const [B, T] = [ids.length, ids[0].length];
  const last = tf.tidy(() => {
    const hidden = model.hidden(tf.tensor2d(ids.flat(), [B, T], 'int32'), cache, project, layout); // [B, T, D]
    const lastHidden = tf.slice(hidden, [0, T - 1, 0], [B, 1, -1]) as tf.Tensor3D; // [B, 1, D]
    const logits = model.logits(lastHidden); // [B, 1, V]
    return onDevice ? tf.argMax(tf.reshape(logits, [B, -1]), 1) : tf.reshape(logits, [-1]);
  });
  try {
    return onDevice ? { ids: (await last.data()) as Int32Array } : { logits: (await last.data()) as Float32Array };
  } finally {
    last.dispose();
  }
}
