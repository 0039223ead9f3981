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
  if (x.rank === 2 || !isRecordingGradients()) return bias ? tf.add(tf.matMul(x as tf.Tensor3D, w), bias) : tf.matMul(x as tf.Tensor3D, w);
  const inDim = x.shape[x.rank - 1];
  const x2d = tf.reshape(x, [x.size / inDim, inDim]) as tf.Tensor2D;
  const y = bias ? tf.add(tf.matMul(x2d, w), bias) : tf.matMul(x2d, w); // [rows, out]
  return tf.reshape(y, [...x.shape.slice(0, -1), w.shape[1]]);
}
