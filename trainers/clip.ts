import * as tf from '@tensorflow/tfjs-core';
import { readScalar } from '../src/backend/host-read.ts';

/** PyTorch's `clip_grad_norm_` adds this to the norm before dividing, so a zero norm never divides by zero. */
const NORM_EPS = 1e-6;

/** The 2-norm of all gradients taken together as one vector (0 for none). */
export async function globalNorm(grads: Map<string, tf.Tensor>): Promise<number> {
  if (grads.size === 0) return 0;
  return readScalar(tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g)))))));
}

/**
 * Scales all gradients by `maxNorm / (norm + 1e-6)` when that is below 1, as PyTorch's
 * `torch.nn.utils.clip_grad_norm_`, and returns the norm measured before clipping. The returned tensors
 * are new (unscaled ones are cheap clones sharing storage) and belong to the caller, as the inputs still do.
 * A non-finite norm leaves the gradients unscaled: the caller should skip that step.
 */
export async function clipByGlobalNorm(
  grads: Map<string, tf.Tensor>,
  maxNorm: number,
): Promise<{ grads: Map<string, tf.Tensor>; norm: number }> {
  if (!(maxNorm > 0)) throw new RangeError(`clipByGlobalNorm: maxNorm must be > 0, got ${maxNorm}`);
  const norm = await globalNorm(grads);
  const scale = maxNorm / (norm + NORM_EPS);
  const clips = Number.isFinite(norm) && scale < 1;
  const out = new Map<string, tf.Tensor>();
  tf.tidy(() => {
    const factor = tf.scalar(scale);
    for (const [name, g] of grads) out.set(name, tf.keep(clips ? tf.mul(g, factor) : tf.clone(g)));
  });
  return { grads: out, norm };
}
