import * as tf from '@tensorflow/tfjs-core';
import { withWrittenGradient, type WrittenGradient } from '../backend/tape.ts';
import { softcap, softcapSlope } from './softcap.ts';

/** Query positions per block: products stay large enough to run near full speed on wasm. */
export const BLOCK_POSITIONS = 128;

/**
 * The first key query position `position` (cached positions counted) of row n may see; keys before it
 * are hidden: a left-padded row's padding, or, in a packed row, the examples before the query's own.
 */
export type FirstVisibleKey = (row: number, position: number) => number;

/**
 * Causal attention softmax(q k^T + mask) v for G query heads per kv head.
 *   q [N, T*G, hd]: rows ordered (position, head), already scaled by 1/sqrt(hd)
 *   k, v [N, S, hd]: S = offset + T keys, the first `offset` of them cached
 * Query position t sees keys [0, offset + t], or [firstKey(n, offset + t), offset + t] with `firstKey`.
 * With `scoreCap` c (Gemma 2) the scores are c * tanh(scores / c) before the mask. Returns [N, T*G, hd].
 * `blockPositions` sets the block size below (tests use small blocks to cover several). A padding query
 * may see no key at all; its output is some average of values, finite and never read.
 *
 * Positions run in blocks of BLOCK_POSITIONS, and each block multiplies only with the keys its positions
 * can see: for T = 256 (two blocks) a quarter of the products, softmax and their gradients is never
 * computed. The gradient is written out so that it reuses the saved probabilities and frees its
 * intermediates as soon as it returns: tfjs keeps the gradient of every taped tensor until the whole
 * backward pass ends, and autodiff through these ops left five [N, T*G, S] tensors per layer alive.
 */
export function causalAttention(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  offset: number,
  blockPositions = BLOCK_POSITIONS,
  firstKey?: FirstVisibleKey,
  scoreCap: number | null = null,
): tf.Tensor3D {
  const [N, rows] = q.shape;
  const S = k.shape[1];
  const T = S - offset;
  const G = rows / T;
  const blocks = queryBlocks(T, offset, blockPositions);
  const attend: WrittenGradient = (...args) => {
    const [qs, ks, vs, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
    const probs = blocks.map((block) => {
      const scores = softcap(tf.matMul(blockRows(qs, block, G), visibleKeys(ks, block), false, true), scoreCap); // [N, P*G, keys]
      const masked = tf.add(tf.reshape(scores, [N, block.positions, G, block.keys]), blockMask(block, N, firstKey)); // [N, P, G, keys]
      return tf.reshape(tf.softmax(masked), [N, block.positions * G, block.keys]) as tf.Tensor3D;
    });
    const context = blocks.map((block, b) => tf.matMul(probs[b], visibleKeys(vs, block)) as tf.Tensor3D); // [N, P*G, hd] each
    save([qs, ks, vs, ...probs]);
    return {
      value: concatRows(context),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sq, sk, sv, ...sp] = saved as tf.Tensor3D[];
          const [dq, dk, dv]: tf.Tensor3D[][] = [[], [], []];
          blocks.forEach((block, b) => {
            const dContext = blockRows(dy as tf.Tensor3D, block, G); // [N, P*G, hd]
            const dCapped = softmaxBackward(sp[b], tf.matMul(dContext, visibleKeys(sv, block), false, true));
            // The capped scores are not kept: recomputed here, one product per block.
            const capped = () => softcap(tf.matMul(blockRows(sq, block, G), visibleKeys(sk, block), false, true), scoreCap);
            const dScores = scoreCap === null ? dCapped : tf.mul(dCapped, softcapSlope(capped(), scoreCap));
            dq.push(tf.matMul(dScores, visibleKeys(sk, block))); // [N, P*G, hd]
            dk.push(padKeys(tf.matMul(dScores, blockRows(sq, block, G), true, false), S)); // [N, S, hd]
            dv.push(padKeys(tf.matMul(sp[b], dContext, true, false), S)); // [N, S, hd]
          });
          return [concatRows(dq), tf.addN(dk), tf.addN(dv)];
        }),
    };
  };
  return withWrittenGradient<tf.Tensor3D>(attend, [q, k, v]);
}

export interface QueryBlock {
  /** First query position of the block, and how many it holds. */
  start: number;
  positions: number;
  /** Keys the block's last position sees: keys [0, keys). */
  keys: number;
  offset: number;
}

/** The blocks of query positions, each with the keys its positions can see. */
export function queryBlocks(T: number, offset: number, blockPositions: number): QueryBlock[] {
  const blocks: QueryBlock[] = [];
  for (let start = 0; start < T; start += blockPositions) {
    const positions = Math.min(blockPositions, T - start);
    blocks.push({ start, positions, keys: offset + start + positions, offset });
  }
  return blocks;
}

/** The block's query rows [N, P*G, hd]: the whole tensor when there is one block. */
function blockRows(x: tf.Tensor3D, block: QueryBlock, G: number): tf.Tensor3D {
  const [N, rows, hd] = x.shape;
  if (block.positions * G === rows) return x;
  return tf.slice(x, [0, block.start * G, 0], [N, block.positions * G, hd]);
}

/** The keys (or values) the block can see, [N, keys, hd]. */
function visibleKeys(x: tf.Tensor3D, block: QueryBlock): tf.Tensor3D {
  const [N, S, hd] = x.shape;
  return block.keys === S ? x : tf.slice(x, [0, 0, 0], [N, block.keys, hd]);
}

/**
 * Additive mask: 0 where position start + p sees the key, -1e9 where it is in the future. [P, 1, keys]
 * for all rows alike, or [N, P, 1, keys] when `firstKey` also hides each row's keys before it.
 */
function blockMask(block: QueryBlock, N: number, firstKey?: FirstVisibleKey): tf.Tensor {
  const { positions: P, keys } = block;
  const causal = new Float32Array(P * keys);
  for (let p = 0; p < P; p++) {
    const lastVisible = block.offset + block.start + p;
    causal.fill(-1e9, p * keys + lastVisible + 1, (p + 1) * keys);
  }
  if (!firstKey) return tf.tensor3d(causal, [P, 1, keys]);
  const mask = new Float32Array(N * P * keys);
  for (let n = 0; n < N; n++) {
    mask.set(causal, n * P * keys);
    for (let p = 0; p < P; p++) {
      const rowStart = (n * P + p) * keys;
      mask.fill(-1e9, rowStart, rowStart + Math.min(firstKey(n, block.offset + block.start + p), keys));
    }
  }
  return tf.tensor4d(mask, [N, P, 1, keys]);
}

function concatRows(parts: tf.Tensor3D[]): tf.Tensor3D {
  return parts.length === 1 ? parts[0] : (tf.concat(parts, 1) as tf.Tensor3D);
}

/** [N, keys, hd] -> [N, S, hd] with zeros for the keys a block does not see. */
function padKeys(x: tf.Tensor3D, S: number): tf.Tensor3D {
  const keys = x.shape[1];
  return keys === S ? x : tf.pad(x, [[0, 0], [0, S - keys], [0, 0]]);
}

/** Gradient of softmax along the last axis, from its output p and the gradient dp of the output. */
function softmaxBackward(p: tf.Tensor3D, dp: tf.Tensor3D): tf.Tensor3D {
  return tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), -1, true)));
}
