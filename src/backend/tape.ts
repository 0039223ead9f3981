/**
 * The gradient tape of tfjs's engine, for the two things its public API cannot say: run a computation
 * without recording it (a frozen teacher inside a loss, whose weights must not stay alive until the
 * backward pass), and compute gradients inside a gradient function (activation recomputation).
 * tfjs records an op only while `gradientDepth > 0 && kernelDepth === 0` (engine.isTapeOn); these helpers
 * move those counters, and nothing else, and put them back.
 */
import * as tf from '@tensorflow/tfjs-core';

interface EngineState {
  gradientDepth: number;
  kernelDepth: number;
  activeTape: unknown;
}

function engineState(): EngineState {
  return (tf.engine() as unknown as { state: EngineState }).state;
}

/** Whether ops run now are recorded for a gradient (inside tf.grads, tf.variableGrads...). */
export function isRecordingGradients(): boolean {
  const state = engineState();
  return state.gradientDepth > 0 && state.kernelDepth === 0;
}

/** Runs `fn` with the tape paused: its ops get no gradient and keep no tensors for one. */
export function withoutGradients<T>(fn: () => T): T {
  const state = engineState();
  state.kernelDepth++;
  try {
    return fn();
  } finally {
    state.kernelDepth--;
  }
}

/**
 * Gradients of f at xs times dy, callable from a customGrad gradient function. A plain tf.grads there
 * would replace the tape that the outer backward pass is walking (the engine keeps one active tape) and
 * clear it when done, so the outer pass would fail at its cleanup: the outer tape is put back afterwards.
 * A gradient tfjs finds no path for comes back as zeros.
 */
export function gradientsDuringBackward(f: () => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor): tf.Tensor[] {
  const state = engineState();
  const outer = state.activeTape;
  try {
    const { value, grads } = tf.engine().gradients(f, xs, dy, true);
    value.dispose();
    return grads.map((g, i) => g ?? tf.zerosLike(xs[i]));
  } finally {
    state.activeTape = outer;
  }
}

/** The body of a tf.customGrad: inputs, then a save function; the value and its written-out gradient. */
export type WrittenGradient = (...args: (tf.Tensor | tf.GradSaveFunc)[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] };

/**
 * `body` through tf.customGrad while a gradient is recorded, else its forward ops alone (in a tidy, with
 * nothing saved): a customGrad call costs an engine scope and kept tensors, which decoding pays on every
 * norm, rotation and attention of every token.
 */
export function withWrittenGradient<T extends tf.Tensor>(body: WrittenGradient, inputs: tf.Tensor[]): T {
  if (isRecordingGradients()) return tf.customGrad(body as never)(...inputs) as T;
  return tf.tidy(() => body(...inputs, () => {}).value) as T;
}
