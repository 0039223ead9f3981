import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * A new tensor of `shape` and `dtype` whose bytes `fill` writes. On wasm they are written straight into the
 * heap: one copy of a streamed weight block where a host array handed to `tf.tensor` makes two (545 MiB a
 * token for a streamed Qwen2.5-0.5B). Elsewhere `fill` writes a host array that becomes the tensor.
 * `fill` must not run tfjs ops: an allocation could move the heap under the bytes it writes.
 */
export function tensorFilledWith(shape: number[], dtype: 'float32' | 'int32', fill: (bytes: Uint8Array) => void): tf.Tensor {
  if (tf.getBackend() !== 'wasm') {
    const values = dtype === 'float32' ? new Float32Array(tf.util.sizeFromShape(shape)) : new Int32Array(tf.util.sizeFromShape(shape));
    fill(new Uint8Array(values.buffer));
    return tf.tensor(values, shape, dtype);
  }
  const backend = tf.backend() as BackendWasm;
  const info = backend.makeOutput(shape, dtype);
  const view = backend.typedArrayFromHeap(info);
  fill(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  return tf.engine().makeTensorFromTensorInfo(info);
}
