import * as tf from '@tensorflow/tfjs-core';

/**
 * Matrix products with the layout the wasm backend is fast at.
 *
 * tfjs-wasm's BatchMatMul is fast only for one un-transposed 2-D product: with `transposeA`/`transposeB`
 * set, or with a batch dimension, it runs 10-30x slower (see REFERENCE.md, "tfjs backends"). The gradient
 * of a product is exactly such a transposed product, so these ops define their own gradients that
 * materialize the transposes and split batches into 2-D products. Other backends take the native path.
 */

/** Whether products must avoid transposes and batches (wasm); other backends take the native ops. */
function needsPlainProducts(): boolean {
  return tf.getBackend() === 'wasm';
}

/** a @ b for 2-D a [M, K] and b [K, N]; the backward pass also runs as plain 2-D products. */
export const matMul2d: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D = tf.customGrad(
  (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    save([a, b]);
    return {
      value: tf.matMul(a, b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as tf.Tensor2D[];
        return [
          tf.matMul(dy as tf.Tensor2D, tf.transpose(sb)), // [M, K]
          tf.matMul(tf.transpose(sa), dy as tf.Tensor2D), // [K, N]
        ];
      },
    };
  },
) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/**
 * Batched a @ b for a [S, M, K] and b [S, K, N]. On wasm it runs as S separate 2-D products (its batched
 * kernel is not its fast path); elsewhere as one BatchMatMul.
 */
export function batchMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  if (!needsPlainProducts()) return tf.matMul(a, b);
  const as = tf.unstack(a) as tf.Tensor2D[];
  const bs = tf.unstack(b) as tf.Tensor2D[];
  return tf.stack(as.map((ai, i) => matMul2d(ai, bs[i]))) as tf.Tensor3D;
}

/** x @ w for activations of any rank [..., in] and a weight stored [in, out]. */
export function linear(x: tf.Tensor, w: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  const inDim = x.shape[x.rank - 1];
  const rows = x.size / inDim;
  const x2d = tf.reshape(x, [rows, inDim]) as tf.Tensor2D;
  let y: tf.Tensor = needsPlainProducts() ? matMul2d(x2d, w) : tf.matMul(x2d, w); // [rows, out]
  if (bias) y = tf.add(y, bias);
  return tf.reshape(y, [...x.shape.slice(0, -1), w.shape[1]]);
}
