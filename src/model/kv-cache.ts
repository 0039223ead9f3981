import * as tf from '@tensorflow/tfjs-core';

/** Where a decoding step writes its key and value: the layer's buffers and the index of the new position. */
export interface DecodeSlot {
  /** [B, KVH, capacity, hd]: keys [0, at) are cached, `at` is free; written in place by the decode kernel. */
  keys: tf.Tensor4D;
  values: tf.Tensor4D;
  at: number;
}

/** The smallest buffer a decoding step allocates: growth doubles it from there. */
const FIRST_CAPACITY = 16;

/**
 * Keys and values of every layer for the positions decoded so far, so each new token attends to them
 * without recomputing the prefix. Tensors are kept out of `tf.tidy` scopes.
 *
 * Each layer holds buffers [B, KVH, capacity, hd] of which the first `stored` positions are cached. A
 * chunk of several positions (`append`) is concatenated into buffers of exactly the positions held; a
 * decoding step (`decodeSlot`) instead gets room for its one position in buffers allocated once for the
 * whole generation when its length is known, else grown by doubling: a token costs no copy of the cache.
 * A layer with a sliding window keeps only the window - 1 positions before each new chunk or step: the
 * oldest ones no query will see again are dropped, so decoding holds at most the window.
 */
export class KVCache {
  private readonly keys: (tf.Tensor4D | null)[];
  private readonly values: (tf.Tensor4D | null)[];
  /** Positions appended to each layer so far, dropped ones included. */
  private readonly positions: number[];
  /** Positions each layer's buffers hold, from index 0. */
  private readonly stored: number[];

  /**
   * `windows[layer]`: that layer's sliding window, or null (none) for every position. `positions`: how many
   * a generation will hold at most, if known: decoding then allocates its buffers once, at that size.
   */
  constructor(
    numLayers: number,
    private readonly windows: readonly (number | null)[] = [],
    private readonly positionsHint?: number,
  ) {
    this.keys = new Array(numLayers).fill(null);
    this.values = new Array(numLayers).fill(null);
    this.positions = new Array(numLayers).fill(0);
    this.stored = new Array(numLayers).fill(0);
  }

  /** Number of positions decoded (the position of the next token), whatever a window dropped. */
  get length(): number {
    return this.positions[0] ?? 0;
  }

  /** Positions of layer `layer` no longer held: its stored key i is position dropped(layer) + i. */
  dropped(layer: number): number {
    return this.positions[layer] - this.stored[layer];
  }

  /** Appends k, v [B, KVH, T, hd] to layer `layer` and returns the keys and values it now holds. */
  append(layer: number, k: tf.Tensor4D, v: tf.Tensor4D): { k: tf.Tensor4D; v: tf.Tensor4D } {
    const window = this.windows[layer] ?? null;
    const keep = window === null ? this.stored[layer] : Math.min(this.stored[layer], window - 1);
    const [fullK, fullV] = tf.tidy(() => {
      const kept = this.kept(layer, keep);
      const joined = (previous: tf.Tensor4D | null, chunk: tf.Tensor4D) => tf.keep(previous ? tf.concat([previous, chunk], 2) : tf.clone(chunk));
      return [joined(kept.keys, k), joined(kept.values, v)];
    });
    this.replace(layer, fullK, fullV, fullK.shape[2]);
    this.positions[layer] += k.shape[2];
    return { k: fullK, v: fullV };
  }

  /**
   * Room for one new position in layer `layer`, whose rows are [B, KVH, hd] each: the decode kernel writes
   * its key and value at `at`, and attends over the buffers' first `at + 1` positions. Counted as appended.
   */
  decodeSlot(layer: number, [B, KVH, hd]: [number, number, number]): DecodeSlot {
    const window = this.windows[layer] ?? null;
    const stored = this.stored[layer];
    if (stored === (this.keys[layer]?.shape[2] ?? 0)) {
      const keep = window === null ? stored : Math.min(stored, window - 1);
      const wanted = this.positionsHint !== undefined && this.positionsHint > stored ? this.positionsHint : Math.max(FIRST_CAPACITY, 2 * stored);
      const capacity = window === null ? wanted : Math.min(wanted, window);
      const [keys, values] = tf.tidy(() => {
        const kept = this.kept(layer, keep);
        const grown = (held: tf.Tensor4D | null) =>
          tf.keep(held ? tf.concat([held, tf.zeros([B, KVH, capacity - keep, hd])], 2) : tf.zeros([B, KVH, capacity, hd])) as tf.Tensor4D;
        return [grown(kept.keys), grown(kept.values)];
      });
      this.replace(layer, keys, values, keep);
    }
    const at = this.stored[layer]++;
    this.positions[layer]++;
    return { keys: this.keys[layer]!, values: this.values[layer]!, at };
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

  /** The last `count` stored positions of a layer (slices of its buffers, or the buffers), or nulls when none. */
  private kept(layer: number, count: number): { keys: tf.Tensor4D | null; values: tf.Tensor4D | null } {
    const stored = this.stored[layer];
    const part = (t: tf.Tensor4D | null) =>
      t === null || count === 0 ? null : count === t.shape[2] ? t : (tf.slice(t, [0, 0, stored - count, 0], [-1, -1, count, -1]) as tf.Tensor4D);
    return { keys: part(this.keys[layer]), values: part(this.values[layer]) };
  }

  private replace(layer: number, keys: tf.Tensor4D, values: tf.Tensor4D, stored: number): void {
    const previous = [this.keys[layer], this.values[layer]];
    this.keys[layer] = keys;
    this.values[layer] = values;
    this.stored[layer] = stored;
    for (const t of previous) if (t !== keys && t !== values) t?.dispose();
  }
}
