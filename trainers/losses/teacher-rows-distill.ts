import * as tf from '@tensorflow/tfjs-core';
import { spans, type Span } from './chunked-distill.ts';
import { checkDivergenceOptions, divergenceTerms, effectiveDivergence, studentScore, type DivergenceOptions } from './distill.ts';
import { maskedMean, maskWeights } from './masking.ts';
import { withoutGradients } from '../../src/backend/tape.ts';

/** A teacher's final hidden states [N, Ht], and its head: the final logits [R, Vt] of some of them. */
export interface RowTeacher {
  hidden: tf.Tensor2D;
  logits: (hiddenRows: tf.Tensor2D) => tf.Tensor2D;
}

/** The loss, and the share of masked positions where the student's top token is the teacher's. */
export interface TeacherRowsResult {
  loss: tf.Scalar;
  top1Agreement: tf.Scalar;
}

/**
 * Full-vocabulary KD between the student's logits [N, V], which the objective already holds for its
 * cross-entropy, and a teacher whose logits are made `rowChunk` positions at a time, so that no [N, Vt]
 * teacher logits exist: maskedMean(fullDistill(studentLogits, teacherLogits), mask), with a gradient for
 * the student's logits. The forward pass makes each chunk's teacher logits once, for the loss and the top-1
 * agreement; the backward pass makes them again instead of holding them.
 *
 * Every pass over the vocabulary goes through softmax, vectorized on wasm where a separate exp costs 4x
 * more: log Z = max - log(max softmax), and forward KL needs no exp at all. Its gradient for the logits is
 * (T w) (q - p); reverse KL and jsd use q (h - E_Q[h]) as chunked-distill.ts explains, over whole rows.
 */
export function teacherRowsDistill(
  studentLogits: tf.Tensor2D,
  teacher: RowTeacher,
  mask: tf.Tensor1D,
  options: DivergenceOptions & { rowChunk: number },
): TeacherRowsResult {
  checkDivergenceOptions(options, 'teacherRowsDistill');
  if (!(Number.isInteger(options.rowChunk) && options.rowChunk > 0)) {
    throw new RangeError(`teacherRowsDistill: options.rowChunk must be a positive integer, got ${options.rowChunk}`);
  }
  const [N, Vs] = studentLogits.shape;
  const T = options.temperature;
  return tf.tidy(() => {
    // Off the tape: the gradient is written out below, and the chunks' [R, V] temporaries go with each tidy.
    const perRow = withoutGradients(() =>
      spans(N, options.rowChunk).map((rows) =>
        tf.tidy(() => {
          const rowPair = pair(studentLogits, teacher, rows, T);
          return { divergence: rowDivergence(rowPair, options), agrees: rowAgreement(rowPair) };
        }),
      ),
    );
    const divergence = tf.concat(perRow.map((row) => row.divergence)); // [N]
    const lossWithGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [logits, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
      const weights = maskWeights(mask); // [N]
      save([logits, weights, teacher.hidden]);
      return {
        value: tf.mul(tf.sum(tf.mul(divergence, weights)), T * T) as tf.Scalar,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf.tidy(() => {
            const [savedLogits, savedWeights, teacherHidden] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor2D];
            const savedTeacher = { ...teacher, hidden: teacherHidden };
            const scale = tf.expandDims(tf.mul(tf.mul(savedWeights, dy), T), 1); // [N, 1]
            const parts = spans(N, options.rowChunk).map((rows) =>
              tf.tidy(() => tf.mul(rowGradient(pair(savedLogits, savedTeacher, rows, T), options), tf.slice(scale, [rows.start, 0], [rows.size, 1]))),
            );
            const gradient = tf.concat(parts, 0) as tf.Tensor2D; // [N, V]
            const cropped = Vs - gradient.shape[1];
            return [cropped > 0 ? tf.concat([gradient, tf.zeros([N, cropped])], 1) : gradient];
          }),
      };
    }) as (logits: tf.Tensor2D) => tf.Scalar;
    const top1Agreement = maskedMean(tf.concat(perRow.map((row) => row.agrees)) as tf.Tensor1D, mask);
    return { loss: lossWithGrad(studentLogits), top1Agreement };
  });
}

/** Both models' distributions at temperature T over the shared range min(V, Vt), for a chunk of rows. */
interface RowPair {
  p: tf.Tensor2D;
  q: tf.Tensor2D;
  logP: tf.Tensor2D;
  logQ: tf.Tensor2D;
}

function pair(studentLogits: tf.Tensor2D, teacher: RowTeacher, { start, size }: Span, T: number): RowPair {
  const teacherLogits = teacher.logits(tf.slice(teacher.hidden, [start, 0], [size, -1]));
  const V = Math.min(studentLogits.shape[1], teacherLogits.shape[1]);
  const [q, logQ] = softmaxAndLog(tf.slice(studentLogits, [start, 0], [size, V]), 1 / T);
  const [p, logP] = softmaxAndLog(teacherLogits.shape[1] === V ? teacherLogits : tf.slice(teacherLogits, [0, 0], [size, V]), 1 / T);
  return { p, q, logP, logQ };
}

/** softmax(x s) and its log, the log-partition taken from the softmax's largest entry (no exp pass). */
function softmaxAndLog(x: tf.Tensor2D, s: number): [tf.Tensor2D, tf.Tensor2D] {
  const scaled = s === 1 ? x : (tf.mul(x, s) as tf.Tensor2D);
  const probs = tf.softmax(scaled) as tf.Tensor2D;
  const logZ = tf.sub(tf.max(scaled, 1, true), tf.log(tf.max(probs, 1, true)));
  return [probs, tf.sub(scaled, logZ) as tf.Tensor2D];
}

/** D per row, [R]. */
function rowDivergence({ p, logP, logQ }: RowPair, options: DivergenceOptions): tf.Tensor1D {
  if (effectiveDivergence(options) === 'forward_kl') return tf.sum(tf.mul(p, tf.sub(logP, logQ)), 1) as tf.Tensor1D;
  return tf.sum(divergenceTerms(logP, logQ, options), 1) as tf.Tensor1D;
}

/** 1 where the two models' most likely tokens (over the shared range) are the same, else 0: [R]. */
function rowAgreement({ p, q }: RowPair): tf.Tensor1D {
  return tf.cast(tf.equal(tf.argMax(p, 1), tf.argMax(q, 1)), 'float32') as tf.Tensor1D;
}

/** dD/ds per row over the shared range, [R, V]. */
function rowGradient({ p, q, logP, logQ }: RowPair, options: DivergenceOptions): tf.Tensor2D {
  const h = studentScore(logP, logQ, options);
  if (h === null) return tf.sub(q, p) as tf.Tensor2D;
  const weight = effectiveDivergence(options) === 'jsd' ? 1 - options.beta : 1;
  const moment = tf.sum(tf.mul(q, h), 1, true);
  return tf.mul(tf.mul(q, tf.sub(h, moment)), weight) as tf.Tensor2D;
}
