import * as tf from '@tensorflow/tfjs-core';
import { maskedMean } from './masking.ts';

export { maskedMean };

/** D(P, Q) between the teacher's P and the student's Q, named as in TRL's GKD. */
export type Divergence = 'forward_kl' | 'reverse_kl' | 'jsd';

export interface DivergenceOptions {
  /** forward_kl: KL(P || Q); reverse_kl: KL(Q || P); jsd: generalized Jensen-Shannon with `beta`. */
  divergence: Divergence;
  /** Softmax temperature T of both distributions; the KD term is T^2 * D (Hinton et al.). */
  temperature: number;
  /** jsd's weight on the teacher in M = beta P + (1 - beta) Q, in [0, 1]; 0 is forward KL, 1 reverse KL. */
  beta: number;
}

export interface TopKOptions extends DivergenceOptions {
  /**
   * bucket: the mass outside the k ids is one more outcome; renormalize: both distributions are
   * restricted to the k ids and renormalized there.
   */
  tail: 'bucket' | 'renormalize';
  /** The temperature the stored logprobs were taken at (default 1); they are re-tempered to `temperature`. */
  storedTemperature?: number;
}

/**
 * Least probability of a tail bucket, so that log P_tail and log Q_tail stay finite (reverse KL and jsd)
 * when the k ids hold all the mass.
 */
const TAIL_FLOOR = 1e-8;

/**
 * Stands in for log 0 in a logSumExp over some entries of a row: finite, so that no inf - inf or
 * 0 * inf reaches a value or a gradient.
 */
const LOG_ZERO = -1e30;

/**
 * Per-position T^2 * D between stored teacher top-k and the student, [N]; positions with no valid teacher
 * entry give 0. studentLogits [N, V]; teacherIds [N, k] int32, each in [0, V) and distinct within a row (as
 * the vocabulary map stores them; not checked: that would wait for the ids' values); teacherLogprobs [N, k],
 * where -Infinity marks a padding entry (its id, usually 0, is ignored).
 *
 * Re-tempering raises the stored probabilities to storedTemperature / temperature and renormalizes. Over
 * the k ids that is exact; the tail bucket is re-tempered as one outcome, which is exact only when the two
 * temperatures are equal (a bucket of many small probabilities grows more when raised to a power < 1).
 */
export function topKDistill(
  studentLogits: tf.Tensor2D,
  teacherIds: tf.Tensor2D,
  teacherLogprobs: tf.Tensor2D,
  options: TopKOptions,
): tf.Tensor1D {
  checkTopKArguments(studentLogits, teacherIds, teacherLogprobs, options);
  const { temperature: T, storedTemperature = 1 } = options;
  return tf.tidy(() => {
    const valid = tf.isFinite(teacherLogprobs); // [N, k]
    // Padding becomes a finite 0 before any arithmetic, where a -Infinity could turn into NaN.
    const stored = tf.where(valid, teacherLogprobs, tf.zerosLike(teacherLogprobs)) as tf.Tensor2D; // [N, k]
    const teacher = { ids: teacherIds, stored, valid, power: storedTemperature / T };
    const tailed = options.tail === 'bucket' ? withTailBucket : renormalized;
    const { logP, logQ, outcomes } = tailed(studentLogits, T, teacher);
    const terms = divergenceTerms(logP, logQ, options);
    return tf.mul(tf.sum(tf.where(outcomes, terms, tf.zerosLike(terms)), 1), T * T) as tf.Tensor1D;
  });
}

interface StoredTopK {
  ids: tf.Tensor2D; // [N, k] int32
  stored: tf.Tensor2D; // [N, k] log-probabilities at the stored temperature, padding set to 0
  valid: tf.Tensor2D; // [N, k] bool
  power: number; // storedTemperature / temperature
}

/** The teacher's and student's log-probabilities over the outcomes `outcomes` marks; other entries are finite. */
interface OutcomeLogProbs {
  logP: tf.Tensor2D;
  logQ: tf.Tensor2D;
  outcomes: tf.Tensor2D;
}

function renormalized(logits: tf.Tensor2D, T: number, teacher: StoredTopK): OutcomeLogProbs {
  const { ids, stored, valid, power } = teacher;
  return {
    logP: maskedLogSoftmax(tf.mul(stored, power), valid),
    logQ: maskedLogSoftmax(tf.div(gatherEachRow(logits, ids), T), valid),
    outcomes: valid,
  };
}

/** Outcomes: the k ids, then one bucket for the rest of the vocabulary. */
function withTailBucket(logits: tf.Tensor2D, T: number, teacher: StoredTopK): OutcomeLogProbs {
  const { ids, stored, valid, power } = teacher;
  const N = logits.shape[0];
  const outcomes = tf.concat([valid, tf.ones([N, 1], 'bool')], 1) as tf.Tensor2D; // [N, k + 1]
  const storedMass = tf.logSumExp(tf.where(valid, stored, tf.fill(stored.shape, LOG_ZERO)), 1, true); // [N, 1]
  // 1 - exp(x) through expm1 keeps a small tail exact; rounding can push the stored mass past 1.
  const storedTail = tf.log(tf.maximum(tf.neg(tf.expm1(storedMass)), TAIL_FLOOR)); // [N, 1]
  const logP = maskedLogSoftmax(tf.mul(tf.concat([stored, storedTail], 1), power), outcomes);

  const studentOutcomes = studentBucketLogProbs(logits, flatIds(ids, logits.shape[1]), tf.cast(valid, 'float32'), T);
  const logQK = tf.slice(studentOutcomes, [0, 0], [N, ids.shape[1]]);
  const studentTail = tf.maximum(tf.slice(studentOutcomes, [0, ids.shape[1]], [N, 1]), Math.log(TAIL_FLOOR));
  return { logP, logQ: tf.concat([logQK, studentTail], 1) as tf.Tensor2D, outcomes };
}

/**
 * The student's log-probabilities at temperature T of the k ids, then of the rest of the vocabulary as one
 * outcome, [N, k + 1]; the rest's is the raw log of its mass (-Infinity when that underflows).
 *
 * Every pass over [N, V] goes through one softmax (vectorized on wasm, where a separate exp costs 4x more),
 * and the gradient is written out. With q = softmax(z / T), K a row's valid ids, Q_t the mass outside K and
 * g = dL/d(outputs):
 *   dL/dz_i = (1/T) (g_i - q_i sum(g))              for i in K,
 *   dL/dz_i = (1/T) q_i (g_t / Q_t - sum(g))        outside K.
 * Both come from `outside`, q with the k ids' probabilities subtracted where they stand (exact zeros), so
 * that no entry is a large value added to its own negative. For the same reason the rest's mass is summed
 * over its entries, not taken as 1 - sum(q_K), which cancels catastrophically in float32 when the k ids
 * hold nearly all the mass.
 */
function studentBucketLogProbs(logits: tf.Tensor2D, flat: tf.Tensor2D, valid: tf.Tensor2D, T: number): tf.Tensor2D {
  const V = logits.shape[1];
  const withGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [z, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const probs = tf.softmax(T === 1 ? z : tf.div(z, T)) as tf.Tensor2D; // [N, V]
    // The largest probability is 1 / sum(exp(s - max)), so logZ = max - log(max q), as exact as logSumExp.
    const logZ = tf.sub(tf.div(tf.max(z, 1, true), T), tf.log(tf.max(probs, 1, true))); // [N, 1]
    const onIds = tf.mul(gatherEachRow(probs, flat, true), valid) as tf.Tensor2D; // [N, k]
    const outside = tf.sub(probs, scatterRows(flat, onIds, V)); // [N, V]
    const tailMass = tf.sum(outside, 1, true); // [N, 1]
    const logQK = tf.sub(tf.div(gatherEachRow(z, flat, true), T), logZ); // [N, k]
    save([outside, onIds, flat, valid, tailMass]);
    return {
      value: tf.concat([logQK, tf.log(tailMass)], 1) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => bucketGradient(dy as tf.Tensor2D, saved, T)),
    };
  }) as (z: tf.Tensor2D) => tf.Tensor2D;
  return withGrad(logits);
}

function bucketGradient(dy: tf.Tensor2D, saved: tf.Tensor[], T: number): tf.Tensor2D {
  const [outside, onIds, flat, valid, tailMass] = saved as tf.Tensor2D[];
  const [N, V] = outside.shape;
  const k = flat.shape[1];
  const dyK = tf.mul(tf.slice(dy, [0, 0], [N, k]), valid); // [N, k]
  const dyTail = tf.slice(dy, [0, k], [N, 1]); // [N, 1]
  const dySum = tf.add(tf.sum(dyK, 1, true), dyTail); // [N, 1]
  // 0 where the tail gets no gradient (floored), whose mass may be 0.
  const perTailMass = tf.where(tf.equal(dyTail, 0), tf.zerosLike(dyTail), tf.div(dyTail, tailMass)); // [N, 1]
  const onTail = tf.mul(outside, tf.div(tf.sub(perTailMass, dySum), T)); // [N, V]
  const onK = tf.div(tf.sub(dyK, tf.mul(onIds, dySum)), T) as tf.Tensor2D; // [N, k]
  return tf.add(onTail, scatterRows(flat, onK, V)) as tf.Tensor2D;
}

/** [N, V] zeros with values [N, k] added at the flat indices `flat` (row * V + id). */
function scatterRows(flat: tf.Tensor2D, values: tf.Tensor2D, vocab: number): tf.Tensor2D {
  const [N, k] = flat.shape;
  return tf.reshape(tf.scatterND(tf.reshape(flat, [N * k, 1]), tf.reshape(values, [N * k]), [N * vocab]), [N, vocab]);
}

/** Log-softmax over the entries `valid` marks in each row; the others come out 0, a finite stand-in. */
function maskedLogSoftmax(x: tf.Tensor2D, valid: tf.Tensor2D): tf.Tensor2D {
  const logZ = tf.logSumExp(tf.where(valid, x, tf.fill(x.shape, LOG_ZERO)), 1, true); // [N, 1]
  const logSoftmax = tf.sub(x, logZ);
  return tf.where(valid, logSoftmax, tf.zerosLike(logSoftmax)) as tf.Tensor2D;
}

/**
 * x[i, ids[i, j]] as [N, k], through the flat index row * V + id (a gather whose gradient wasm has);
 * `flat` when the ids already are flat indices.
 */
function gatherEachRow(x: tf.Tensor2D, ids: tf.Tensor2D, flat = false): tf.Tensor2D {
  const [N, V] = x.shape;
  const indices = flat ? ids : flatIds(ids, V);
  return tf.reshape(tf.gather(tf.reshape(x, [N * V]), tf.reshape(indices, [-1])), ids.shape) as tf.Tensor2D;
}

function flatIds(ids: tf.Tensor2D, vocab: number): tf.Tensor2D {
  const rowStarts = tf.mul(tf.range(0, ids.shape[0], 1, 'int32'), tf.scalar(vocab, 'int32')); // [N]
  return tf.add(tf.expandDims(rowStarts, 1), ids) as tf.Tensor2D; // [N, k]
}

/**
 * Per-position T^2 * D between full teacher logits and student logits over the same vocabulary, [N].
 * If the two last dims differ (padded embeddings, e.g. 151,936 vs 152,064 rows), both are cropped to the
 * shared range min(Vs, Vt). Logits are taken to be finite.
 */
export function fullDistill(studentLogits: tf.Tensor2D, teacherLogits: tf.Tensor2D, options: DivergenceOptions): tf.Tensor1D {
  checkDivergenceOptions(options, 'fullDistill');
  checkSameRows('fullDistill', studentLogits, 'studentLogits', teacherLogits, 'teacherLogits');
  const T = options.temperature;
  return tf.tidy(() => {
    const V = Math.min(studentLogits.shape[1], teacherLogits.shape[1]);
    const logQ = tf.logSoftmax(tf.div(cropColumns(studentLogits, V), T)); // [N, V]
    const logP = tf.logSoftmax(tf.div(cropColumns(teacherLogits, V), T)); // [N, V]
    return tf.mul(tf.sum(divergenceTerms(logP, logQ, options), 1), T * T) as tf.Tensor1D;
  });
}

function cropColumns(x: tf.Tensor2D, columns: number): tf.Tensor2D {
  return x.shape[1] === columns ? x : tf.slice(x, [0, 0], [x.shape[0], columns]);
}

/**
 * The divergence TRL's generalized_jsd_loss computes: jsd with beta 0 is KL(P || Q) and with beta 1 is
 * KL(Q || P), the endpoints where the mixture form itself would be 0.
 */
export function effectiveDivergence({ divergence, beta }: DivergenceOptions): Divergence {
  if (divergence !== 'jsd') return divergence;
  if (beta === 0) return 'forward_kl';
  if (beta === 1) return 'reverse_kl';
  return 'jsd';
}

/**
 * D(P, Q) outcome by outcome, from log-probabilities of the same shape: summed over the outcomes, D.
 * Each term is a probability times a difference of logs, so an outcome with probability 0 adds 0.
 */
export function divergenceTerms(logP: tf.Tensor, logQ: tf.Tensor, options: DivergenceOptions): tf.Tensor {
  switch (effectiveDivergence(options)) {
    case 'forward_kl':
      return tf.mul(tf.exp(logP), tf.sub(logP, logQ));
    case 'reverse_kl':
      return tf.mul(tf.exp(logQ), tf.sub(logQ, logP));
    case 'jsd': {
      const { beta } = options;
      const logM = logMixture(logP, logQ, beta);
      const teacherPart = tf.mul(tf.exp(logP), tf.sub(logP, logM));
      const studentPart = tf.mul(tf.exp(logQ), tf.sub(logQ, logM));
      return tf.add(tf.mul(teacherPart, beta), tf.mul(studentPart, 1 - beta));
    }
  }
}

/**
 * The student's score h in dD/ds = q (h - E_Q[h]) (times 1 - beta for jsd): log q - log p for reverse KL,
 * log q - log m for jsd; forward KL, whose gradient is q - p, has none.
 */
export function studentScore(logP: tf.Tensor2D, logQ: tf.Tensor2D, options: DivergenceOptions): tf.Tensor2D | null {
  switch (effectiveDivergence(options)) {
    case 'forward_kl':
      return null;
    case 'reverse_kl':
      return tf.sub(logQ, logP) as tf.Tensor2D;
    case 'jsd':
      return tf.sub(logQ, logMixture(logP, logQ, options.beta)) as tf.Tensor2D;
  }
}

/**
 * log(beta P + (1 - beta) Q) for 0 < beta < 1. Written as m + log(e^(a-m) + e^(b-m)) with m = max(a, b):
 * its gradient does not depend on how `maximum` splits a tie, as a form with |a - b| would.
 */
export function logMixture(logP: tf.Tensor, logQ: tf.Tensor, beta: number): tf.Tensor {
  const a = tf.add(logP, Math.log(beta));
  const b = tf.add(logQ, Math.log(1 - beta));
  const m = tf.maximum(a, b);
  return tf.add(m, tf.log(tf.add(tf.exp(tf.sub(a, m)), tf.exp(tf.sub(b, m)))));
}

/**
 * Fraction of masked positions where the student's argmax equals the teacher's top-1 id, for metrics (no
 * gradient). studentLogits [N, V]; teacherTop1 [N] int32; mask [N].
 */
export function top1Agreement(studentLogits: tf.Tensor2D, teacherTop1: tf.Tensor1D, mask: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const agrees = tf.cast(tf.equal(tf.argMax(studentLogits, 1), tf.cast(teacherTop1, 'int32')), 'float32');
    return maskedMean(agrees as tf.Tensor1D, mask);
  });
}

/**
 * (1 - alpha) * ce + alpha * kd. At alpha 0 (or 1) it returns ce (or kd) itself, so a pure-CE run is bit
 * for bit the run without distillation, gradients included.
 */
export function combineLosses(ce: tf.Scalar, kd: tf.Scalar, alpha: number): tf.Scalar {
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`combineLosses: alpha must be in [0, 1], got ${alpha}`);
  if (alpha === 0) return ce;
  if (alpha === 1) return kd;
  return tf.tidy(() => tf.add(tf.mul(ce, 1 - alpha), tf.mul(kd, alpha)));
}

/** Throws a RangeError naming `caller` and the option when the divergence options cannot be used. */
export function checkDivergenceOptions(options: DivergenceOptions, caller: string): void {
  const { divergence, temperature, beta } = options;
  if (!['forward_kl', 'reverse_kl', 'jsd'].includes(divergence)) {
    throw new RangeError(`${caller}: options.divergence must be forward_kl, reverse_kl or jsd, got ${String(divergence)}`);
  }
  if (!(Number.isFinite(temperature) && temperature > 0)) {
    throw new RangeError(`${caller}: options.temperature must be a finite number > 0, got ${temperature}`);
  }
  if (divergence === 'jsd' && !(beta >= 0 && beta <= 1)) {
    throw new RangeError(`${caller}: options.beta must be in [0, 1] for jsd, got ${beta}`);
  }
}

/** Throws a RangeError when the two tensors do not have the same number of rows. */
export function checkSameRows(caller: string, a: tf.Tensor, aName: string, b: tf.Tensor, bName: string): void {
  if (a.shape[0] !== b.shape[0]) {
    throw new RangeError(`${caller}: ${aName} has ${a.shape[0]} rows but ${bName} has ${b.shape[0]}`);
  }
}

function checkTopKArguments(studentLogits: tf.Tensor2D, ids: tf.Tensor2D, logprobs: tf.Tensor2D, options: TopKOptions): void {
  checkDivergenceOptions(options, 'topKDistill');
  const { tail, storedTemperature = 1 } = options;
  if (tail !== 'bucket' && tail !== 'renormalize') {
    throw new RangeError(`topKDistill: options.tail must be bucket or renormalize, got ${String(tail)}`);
  }
  if (!(Number.isFinite(storedTemperature) && storedTemperature > 0)) {
    throw new RangeError(`topKDistill: options.storedTemperature must be a finite number > 0, got ${storedTemperature}`);
  }
  if (ids.dtype !== 'int32') throw new RangeError(`topKDistill: teacherIds must be int32, got ${ids.dtype}`);
  if (ids.shape.join() !== logprobs.shape.join()) {
    throw new RangeError(`topKDistill: teacherIds [${ids.shape}] and teacherLogprobs [${logprobs.shape}] must have one shape`);
  }
  checkSameRows('topKDistill', studentLogits, 'studentLogits', ids, 'teacherIds');
}
