import * as tf from '@tensorflow/tfjs-core';

/**
 * Keys and values of every layer for the positions decoded so far, so each new token attends to them
 * without recomputing the prefix. Tensors are kept out of `tf.tidy` scopes and replaced on each append.
 * A layer with a sliding window keeps only the window - 1 positions before each new chunk: the oldest
 * ones no query will see again are dropped, so decoding holds at most the window.
 */
export class KVCache {
  private readonly keys: (tf.Tensor4D | null)[];
  private readonly values: (tf.Tensor4D | null)[];
  /** Positions appended to each layer so far, dropped ones included. */
  private readonly positions: number[];

  /** `windows[layer]`: that layer's sliding window, or null (none) for every position. */
  constructor(numLayers: number, private readonly windows: readonly (number | null)[] = []) {
    this.keys = new Array(numLayers).fill(null);
    this.values = new Array(numLayers).fill(null);
    this.positions = new Array(numLayers).fill(0);
  }

  /** Number of positions decoded (the position of the next token), whatever a window dropped. */
  get length(): number {
    return this.positions[0] ?? 0;
  }

  /** Positions of layer `layer` no longer held: its stored key i is position dropped(layer) + i. */
  dropped(layer: number): number {
    return this.positions[layer] - (this.keys[layer]?.shape[2] ?? 0);
  }

  /** Appends k, v [B, KVH, T, hd] to layer `layer` and returns the keys and values it now holds. */
  append(layer: number, k: tf.Tensor4D, v: tf.Tensor4D): { k: tf.Tensor4D; v: tf.Tensor4D } {
    const previousK = this.keys[layer];
    const previousV = this.values[layer];
    const window = this.windows[layer] ?? null;
    const keep = (t: tf.Tensor4D) => (window === null || t.shape[2] < window ? t : tf.slice(t, [0, 0, t.shape[2] - (window - 1), 0], [-1, -1, window - 1, -1]));
    const fullK = tf.keep(tf.tidy(() => (previousK ? tf.concat([keep(previousK), k], 2) : tf.clone(k))));
    const fullV = tf.keep(tf.tidy(() => (previousV ? tf.concat([keep(previousV), v], 2) : tf.clone(v))));
    previousK?.dispose();
    previousV?.dispose();
    this.keys[layer] = fullK;
    this.values[layer] = fullV;
    this.positions[layer] += k.shape[2];
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
