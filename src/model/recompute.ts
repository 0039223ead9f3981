/**
 * Activation recomputation (gradient checkpointing) for one decoder layer: the tape keeps only the layer's
 * input, and the backward pass runs the layer again, with a tape, to get its gradients. Memory per layer
 * falls from every intermediate (attention scores, MLP activations) to one [B, T, D] input, for one more
 * forward pass per step; a layer whose weights are streamed in needs it, since its weights leave after use.
 */
import * as tf from '@tensorflow/tfjs-core';
import { gradientsDuringBackward } from '../backend/tape.ts';

/** Random state a layer draws from (LoRA dropout), replayed so the recomputation draws the same masks. */
export interface RandomState {
  get(): number;
  set(state: number): void;
}

/**
 * `block(x, context)` whose backward pass recomputes it. `context` (rope tables) is kept for the backward
 * pass but gets no gradient; `variables` are the trainable weights the block reads, which get theirs.
 */
export function recomputed(
  block: (x: tf.Tensor3D, context: tf.Tensor[]) => tf.Tensor3D,
  x: tf.Tensor3D,
  context: tf.Tensor[],
  variables: tf.Variable[],
  random?: RandomState,
): tf.Tensor3D {
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const input = args[0] as tf.Tensor3D;
    const before = random?.get();
    save([input, ...context]);
    return {
      value: block(input, context),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedInput, ...savedContext] = saved as [tf.Tensor3D, ...tf.Tensor[]];
        const after = random?.get();
        if (before !== undefined) random!.set(before);
        try {
          return gradientsDuringBackward(() => block(savedInput, savedContext), [savedInput, ...variables], dy);
        } finally {
          if (after !== undefined) random!.set(after);
        }
      },
    };
  });
  return run(x, ...variables) as tf.Tensor3D;
}
