import * as tf from '@tensorflow/tfjs-core';

/** Which parameters get weight decay; the model provides its own (see `decaysByDefault`). */
export type DecayPredicate = (name: string, param: tf.Variable) => boolean;

export interface AdamWOptions {
  /** Learning rate used when `step` is given none (the schedule usually passes one per step). */
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  decay?: DecayPredicate;
}

/** Host copy of the optimizer's state, for checkpoints. `step` counts the updates taken so far. */
export interface AdamWState {
  step: number;
  moments: Map<string, { m: Float32Array; v: Float32Array }>;
}

/** Matrices decay; vectors (norm gains, biases) do not, as in GPT-2/nanoGPT-style training. */
export const decaysByDefault: DecayPredicate = (_name, param) => param.rank >= 2;

interface Slot {
  param: tf.Variable;
  m: tf.Variable;
  v: tf.Variable;
  decays: boolean;
}

/**
 * AdamW with decoupled weight decay, the update of PyTorch's `torch.optim.AdamW`:
 *   p -= lr*wd*p;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
 *   p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
 * Only parameters that are trainable when the optimizer is built get state; each needs a gradient at
 * every step, under the same name as in the parameter map.
 */
export class AdamW {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly slots = new Map<string, Slot>();
  private stepCount = 0;

  constructor(params: Map<string, tf.Variable>, options: AdamWOptions) {
    const { lr, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0.01, decay = decaysByDefault } = options;
    checkRange('lr', lr, 0, Infinity);
    checkRange('betas[0]', betas[0], 0, 1);
    checkRange('betas[1]', betas[1], 0, 1);
    checkRange('eps', eps, 0, Infinity);
    checkRange('weightDecay', weightDecay, 0, Infinity);
    this.lr = lr;
    [this.beta1, this.beta2] = betas;
    this.eps = eps;
    this.weightDecay = weightDecay;
    for (const [name, param] of params) {
      if (!param.trainable) continue;
      if (param.dtype !== 'float32') {
        throw new TypeError(`AdamW: parameter '${name}' has dtype ${param.dtype}; expected float32`);
      }
      this.slots.set(name, { param, m: zerosVariable(param), v: zerosVariable(param), decays: decay(name, param) });
    }
  }

  /** Updates taken so far (PyTorch's `state['step']`). */
  get steps(): number {
    return this.stepCount;
  }

  /** Names of the parameters this optimizer updates, in the order they were given. */
  paramNames(): string[] {
    return [...this.slots.keys()];
  }

  /** Applies one update from `grads` (keyed like the parameter map); the caller keeps and disposes them. */
  step(grads: Map<string, tf.Tensor>, lr: number = this.lr): void {
    checkRange('lr', lr, 0, Infinity);
    this.checkGrads(grads);
    const t = this.stepCount + 1;
    tf.tidy(() => {
      const scalars = {
        beta1: tf.scalar(this.beta1),
        oneMinusBeta1: tf.scalar(1 - this.beta1),
        beta2: tf.scalar(this.beta2),
        oneMinusBeta2: tf.scalar(1 - this.beta2),
        stepSize: tf.scalar(lr / (1 - this.beta1 ** t)),
        sqrtBiasCorrection2: tf.scalar(Math.sqrt(1 - this.beta2 ** t)),
        eps: tf.scalar(this.eps),
        decayFactor: tf.scalar(1 - lr * this.weightDecay),
      };
      for (const [name, slot] of this.slots) {
        const g = grads.get(name)!;
        const m = tf.add(tf.mul(slot.m, scalars.beta1), tf.mul(g, scalars.oneMinusBeta1));
        // g * g rather than square(g): the same values, and wasm's Square costs 3x a Multiply per call.
        const v = tf.add(tf.mul(slot.v, scalars.beta2), tf.mul(tf.mul(g, g), scalars.oneMinusBeta2));
        const denom = tf.add(tf.div(tf.sqrt(v), scalars.sqrtBiasCorrection2), scalars.eps);
        const update = tf.div(tf.mul(m, scalars.stepSize), denom);
        const decayed = slot.decays ? tf.mul(slot.param, scalars.decayFactor) : slot.param;
        slot.m.assign(m);
        slot.v.assign(v);
        slot.param.assign(tf.sub(decayed, update));
      }
    });
    this.stepCount = t;
  }

  /** A copy of the moments on the host, safe to keep while training goes on. */
  async state(): Promise<AdamWState> {
    const step = this.stepCount;
    const moments = new Map<string, { m: Float32Array; v: Float32Array }>();
    for (const [name, slot] of this.slots) {
      moments.set(name, {
        m: ((await slot.m.data()) as Float32Array).slice(),
        v: ((await slot.v.data()) as Float32Array).slice(),
      });
    }
    return { step, moments };
  }

  /** Restores a state from `state()` or a checkpoint; it must cover exactly this optimizer's parameters. */
  loadState(state: AdamWState): void {
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw new RangeError(`AdamW.loadState: step must be a non-negative integer, got ${state.step}`);
    }
    for (const name of state.moments.keys()) {
      if (!this.slots.has(name)) {
        throw new Error(`AdamW.loadState: state has moments for '${name}', which is not a trainable parameter`);
      }
    }
    for (const [name, slot] of this.slots) {
      const moments = state.moments.get(name);
      if (!moments) throw new Error(`AdamW.loadState: state lacks moments for parameter '${name}'`);
      for (const key of ['m', 'v'] as const) {
        if (moments[key].length !== slot.param.size) {
          throw new Error(
            `AdamW.loadState: moment ${key} of '${name}' has ${moments[key].length} values; ` +
              `expected ${slot.param.size} (shape [${slot.param.shape}])`,
          );
        }
      }
    }
    for (const [name, slot] of this.slots) {
      const { m, v } = state.moments.get(name)!;
      // Copies: the cpu backend would otherwise adopt the caller's arrays as its storage.
      tf.tidy(() => {
        slot.m.assign(tf.tensor(m.slice(), slot.param.shape, 'float32'));
        slot.v.assign(tf.tensor(v.slice(), slot.param.shape, 'float32'));
      });
    }
    this.stepCount = state.step;
  }

  /** Frees the moment tensors; the parameters belong to the caller. */
  dispose(): void {
    for (const slot of this.slots.values()) {
      slot.m.dispose();
      slot.v.dispose();
    }
    this.slots.clear();
  }

  private checkGrads(grads: Map<string, tf.Tensor>): void {
    for (const [name, g] of grads) {
      const slot = this.slots.get(name);
      if (!slot) throw new Error(`AdamW.step: gradient for '${name}', which is not a trainable parameter`);
      if (!tf.util.arraysEqual(g.shape, slot.param.shape)) {
        throw new Error(`AdamW.step: gradient for '${name}' has shape [${g.shape}]; expected [${slot.param.shape}]`);
      }
    }
    for (const name of this.slots.keys()) {
      if (!grads.has(name)) {
        throw new Error(
          `AdamW.step: no gradient for trainable parameter '${name}'; freeze it (trainable = false) ` +
            'before building the optimizer if it should not train',
        );
      }
    }
  }
}

/** A non-trainable zero variable shaped like `param`; the tidy frees the initial tensor it copies. */
function zerosVariable(param: tf.Variable): tf.Variable {
  return tf.tidy(() => tf.variable(tf.zerosLike(param), false));
}

function checkRange(name: string, value: number, min: number, maxExclusive: number): void {
  if (!(Number.isFinite(value) && value >= min && value < maxExclusive)) {
    const upper = maxExclusive === Infinity ? '' : ` and below ${maxExclusive}`;
    throw new RangeError(`AdamW: ${name} must be a finite number >= ${min}${upper}, got ${value}`);
  }
}
