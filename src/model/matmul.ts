import * as tf from '@tensorflow/tfjs-core';
import { isRecordingGradients } from '../backend/tape.ts';

/**
 * x @ w for activations of any rank [..., in] and a weight stored [in, out].
 *
 * Plain `tf.matMul` throughout the model, batched and transposed products included (attention, the
 * gradients autodiff builds): on wasm they run through the BatchMatMul kernel registered by
 * src/backend/kernels, which turns them into the backend's fast 2-D products.
 * Under a gradient tape x goes in as one 2-D matrix, so the weight's gradient is one product rather than
 * a batch of them summed; without one, the weight is broadcast over x's leading axes, which is the same
 * single product without the two reshapes (decoding runs seven projections a layer per token).
 */
export function linear(x: tf.Tensor, w: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  const y = product(x, w, false);
  return bias ? tf.add(y, bias) : y;
}

/** x @ w^T for a weight stored [out, in], as Hugging Face files hold it (a streamed layer's uploads). */
export function linearOfRows(x: tf.Tensor, w: tf.Tensor2D): tf.Tensor {
  return product(x, w, true);
}

function product(x: tf.Tensor, w: tf.Tensor2D, transposed: boolean): tf.Tensor {
  if (x.rank === 2 || !isRecordingGradients()) return tf.matMul(x as tf.Tensor3D, w, false, transposed);
  const inDim = x.shape[x.rank - 1];
  const y = tf.matMul(tf.reshape(x, [x.size / inDim, inDim]) as tf.Tensor2D, w, false, transposed); // [rows, out]
  return tf.reshape(y, [...x.shape.slice(0, -1), w.shape[transposed ? 0 : 1]]);
}
