import * as tf from '@tensorflow/tfjs-core';

/**
 * Keys and values of every layer for the positions decoded so far, so each new token attends to them
 * without recomputing the prefix. Tensors are kept out of `tf.tidy` scopes and replaced on each append.
 */
export class KVCache {
  private readonly keys: (tf.Tensor4D | null)[];
  private readonly values: (tf.Tensor4D | null)[];

  constructor(numLayers: number) {
    this.keys = new Array(numLayers).fill(null);
    this.values = new Array(numLayers).fill(null);
  }

  /** Number of cached positions (the position offset of the next token). */
  get length(): number {
    return this.keys[0]?.shape[2] ?? 0;
  }

  /** Appends k, v [B, KVH, T, hd] to layer `layer` and returns the full keys and values. */
  append(layer: number, k: tf.Tensor4D, v: tf.Tensor4D): { k: tf.Tensor4D; v: tf.Tensor4D } {
    const previousK = this.keys[layer];
    const previousV = this.values[layer];
    const fullK = tf.keep(previousK ? tf.concat([previousK, k], 2) : tf.clone(k));
    const fullV = tf.keep(previousV ? tf.concat([previousV, v], 2) : tf.clone(v));
    previousK?.dispose();
    previousV?.dispose();
    this.keys[layer] = fullK;
    this.values[layer] = fullV;
    return { k: fullK, v: fullV };
  }

  /** Keeps only the given batch rows, in that order: a batched decoding drops the sequences that ended. */
  keepRows(rows: readonly number[]): void {
    for (const list of [this.keys, this.values]) {
      list.forEach((previous, layer) => {
        if (!previous) return;
        list[layer] = tf.keep(tf.tidy(() => tf.gather(previous, tf.tensor1d([...rows], 'int32'), 0)));
        previous.dispose();
      });
    }
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
  }
}
