import * as tf from '@tensorflow/tfjs-core';
import {
  checkDivergenceOptions,
  checkSameRows,
  divergenceTerms,
  effectiveDivergence,
  logMixture,
  type DivergenceOptions,
} from './distill.ts';
import { softcap, softcapSlope } from '../../src/model/softcap.ts';
import { maskWeights } from './masking.ts';

/**
 * Full-vocabulary distillation from an in-process teacher without materializing [N, V] logits: the loss of
 * fullDistill's masked mean, computed rowChunk x vocabChunk logits at a time, forward and backward.
 *
 * Per row chunk, pass 1 streams the log-partitions of both models over the vocabulary chunks (an online
 * logSumExp); pass 2 recomputes each chunk's logits and sums the divergence. The gradient recomputes them
 * once more and applies a written-out dD/dz, because autodiff would keep every chunk's logits alive.
 *
 * With s = z / T and Q = softmax(s), any D(P, Q) has dD/ds_j = q_j (g_j - E_Q[g]) with g = dD/dq:
 * - forward KL: g = -p / q and E_Q[g] = -1, so dD/ds = q - p;
 * - reverse KL: g = log q - log p + 1, so dD/ds = q (h - E_Q[h]) with h = log q - log p (E_Q[h] = D);
 * - jsd: the terms of dD/dq through M cancel, leaving g = (1 - beta) h with h = log q - log m, so
 *   dD/ds = (1 - beta) q (h - E_Q[h]).
 * E_Q[h] needs the whole row, so pass 2 also sums it (the "student moment") for the backward pass.
 * The loss is T^2 * D averaged over the mask, so dL/dz = T * weight * dD/ds.
 */

export interface ChunkedDistillInput {
  studentHidden: tf.Tensor2D; // [N, H] final normed hidden states of the student at the scored positions
  studentHead: tf.Tensor2D; // [H, V] the student's output projection (gets a gradient)
  teacherHidden: tf.Tensor2D; // [N, Ht] (no gradient)
  teacherHead: tf.Tensor2D; // [Ht, Vt] (no gradient)
  mask: tf.Tensor1D; // [N] 1 = scored
  /** Final-logit soft-caps (Gemma 2), applied to each model's logits before the temperature; null: none. */
  studentCap?: number | null;
  teacherCap?: number | null;
}

export interface ChunkSizes {
  /** Rows per chunk: higher is faster (bigger products), and memory grows as rowChunk x vocabChunk. */
  rowChunk: number;
  /** Vocabulary columns per chunk. */
  vocabChunk: number;
}

/**
 * Masked mean over positions of T^2 * D between teacher and student over their shared vocabulary range
 * min(V, Vt), with a gradient for studentHidden and studentHead. Equals
 * maskedMean(fullDistill(studentHidden @ studentHead, teacherHidden @ teacherHead), mask).
 */
export function chunkedFullDistillLoss(input: ChunkedDistillInput, options: DivergenceOptions & ChunkSizes): tf.Scalar {
  checkInput(input, options);
  const { teacherHidden, teacherHead, mask } = input;
  const T = options.temperature;
  const V = Math.min(input.studentHead.shape[1], teacherHead.shape[1]);
  const rows = spans(input.studentHidden.shape[0], options.rowChunk);
  const caps = { student: input.studentCap ?? null, teacher: input.teacherCap ?? null };
  const plan: Plan = { rows, vocab: spans(V, options.vocabChunk), options, caps };

  const lossWithGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [hidden, head, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    const weights = maskWeights(mask); // [N]
    const stats = rowStatistics(plan, { hidden, head, teacherHidden, teacherHead });
    save([hidden, head, teacherHidden, teacherHead, weights, stats.studentLogZ, stats.teacherLogZ, stats.studentMoment]);
    return {
      value: tf.mul(tf.sum(tf.mul(stats.divergence, weights)), T * T) as tf.Scalar,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => backward(plan, saved, dy)),
    };
  }) as (hidden: tf.Tensor2D, head: tf.Tensor2D) => tf.Scalar;
  return tf.tidy(() => lossWithGrad(input.studentHidden, input.studentHead));
}

interface Span {
  start: number;
  size: number;
}

interface Plan {
  rows: Span[];
  vocab: Span[]; // covers [0, min(V, Vt))
  options: DivergenceOptions;
  caps: { student: number | null; teacher: number | null };
}

interface Models {
  hidden: tf.Tensor2D; // [N, H] or a row chunk of it
  head: tf.Tensor2D; // [H, V]
  teacherHidden: tf.Tensor2D; // [N, Ht] or a row chunk of it
  teacherHead: tf.Tensor2D; // [Ht, Vt]
}

/** Per row, [N] each: both log-partitions at temperature T, D, and E_Q[h] (see the file comment). */
type RowStatistics = {
  studentLogZ: tf.Tensor1D;
  teacherLogZ: tf.Tensor1D;
  divergence: tf.Tensor1D;
  studentMoment: tf.Tensor1D;
};

function rowStatistics(plan: Plan, models: Models): RowStatistics {
  const parts = plan.rows.map((rows) => tf.tidy(() => rowChunkStatistics(plan, sliceRows(models, rows))));
  const join = (key: keyof RowStatistics) => tf.concat(parts.map((part) => part[key])) as tf.Tensor1D;
  const joined: RowStatistics = {
    studentLogZ: join('studentLogZ'),
    teacherLogZ: join('teacherLogZ'),
    divergence: join('divergence'),
    studentMoment: join('studentMoment'),
  };
  parts.forEach((part) => tf.dispose(Object.values(part)));
  return joined;
}

function rowChunkStatistics(plan: Plan, rows: Models): RowStatistics {
  const { options } = plan;
  let studentLogZ: tf.Tensor1D | null = null; // [R]
  let teacherLogZ: tf.Tensor1D | null = null;
  for (const cols of plan.vocab) {
    const [s, t] = tf.tidy(() => {
      const { student, teacher } = chunkLogits(rows, cols, plan);
      return [tf.logSumExp(student, 1), tf.logSumExp(teacher, 1)] as tf.Tensor1D[];
    });
    studentLogZ = accumulate(studentLogZ, s, logAddExp);
    teacherLogZ = accumulate(teacherLogZ, t, logAddExp);
  }
  const logZ = { student: tf.expandDims(studentLogZ!, 1), teacher: tf.expandDims(teacherLogZ!, 1) } as LogPartitions;
  let divergence: tf.Tensor1D | null = null; // [R]
  let studentMoment: tf.Tensor1D | null = null;
  for (const cols of plan.vocab) {
    const [d, m] = tf.tidy(() => {
      const { logP, logQ } = chunkLogProbs(rows, cols, logZ, plan);
      // Separate tidies free each formula's [R, C] temporaries before the next one makes its own.
      const divergencePart = tf.tidy(() => tf.sum(divergenceTerms(logP, logQ, options), 1) as tf.Tensor1D);
      return [divergencePart, tf.tidy(() => momentPart(logP, logQ, options))];
    });
    divergence = accumulate(divergence, d);
    studentMoment = accumulate(studentMoment, m);
  }
  return { studentLogZ: studentLogZ!, teacherLogZ: teacherLogZ!, divergence: divergence!, studentMoment: studentMoment! };
}

/** dL/d hidden and dL/d head, walking the same chunks as the forward pass. */
function backward(plan: Plan, saved: tf.Tensor[], dy: tf.Tensor): tf.Tensor[] {
  const [hidden, head, teacherHidden, teacherHead] = saved.slice(0, 4) as tf.Tensor2D[];
  const [weights, studentLogZ, teacherLogZ, studentMoment] = saved.slice(4);
  const { options } = plan;
  const T = options.temperature;
  const models = { hidden, head, teacherHidden, teacherHead };
  const perRow = tf.stack([studentLogZ, teacherLogZ, studentMoment, tf.mul(tf.mul(weights, dy), T)], 1); // [N, 4]
  const dHeadChunks: (tf.Tensor2D | null)[] = plan.vocab.map(() => null); // [H, C] each
  const dHiddenRows: tf.Tensor2D[] = []; // [R, H] each
  for (const rows of plan.rows) {
    const rowModels = sliceRows(models, rows);
    const [logZS, logZT, moment, scale] = tf.split(tf.slice(perRow, [rows.start, 0], [rows.size, 4]), 4, 1); // [R, 1] each
    const logZ = { student: logZS, teacher: logZT } as LogPartitions;
    let dHidden: tf.Tensor2D | null = null;
    for (const [j, cols] of plan.vocab.entries()) {
      const [dHiddenPart, dHeadPart] = tf.tidy(() => {
        const { logP, logQ } = chunkLogProbs(rowModels, cols, logZ, plan);
        const dCapped = tf.tidy(() => tf.mul(divergenceGradient(logP, logQ, moment, options), scale)); // [R, C]
        // Through the cap: its slope at the capped logits, which are (log q + log Z) * T.
        const cap = plan.caps.student;
        const dLogits = cap === null ? dCapped : tf.mul(dCapped, softcapSlope(tf.mul(tf.add(logQ, logZS), T), cap));
        const headCols = sliceColumns(head, cols); // [H, C]
        const dHiddenPart = tf.matMul(dLogits, headCols, false, true); // [R, H]
        return [dHiddenPart, tf.matMul(rowModels.hidden, dLogits, true, false)] as tf.Tensor2D[]; // [H, C]
      });
      dHidden = accumulate(dHidden, dHiddenPart);
      dHeadChunks[j] = accumulate(dHeadChunks[j], dHeadPart);
    }
    dHiddenRows.push(dHidden!);
  }
  const [H, Vs] = head.shape;
  const cropped = Vs - plan.vocab.reduce((sum, span) => sum + span.size, 0);
  const dHead = tf.concat([...(dHeadChunks as tf.Tensor2D[]), ...(cropped > 0 ? [tf.zeros([H, cropped])] : [])], 1);
  return [tf.concat(dHiddenRows, 0), dHead];
}

/** Both models' (capped) logits at temperature T for one chunk of rows and vocabulary: [R, C] each. */
function chunkLogits(rows: Models, cols: Span, { options, caps }: Plan): { student: tf.Tensor2D; teacher: tf.Tensor2D } {
  const T = options.temperature;
  return {
    student: tf.div(softcap(tf.matMul(rows.hidden, sliceColumns(rows.head, cols)), caps.student), T),
    teacher: tf.div(softcap(tf.matMul(rows.teacherHidden, sliceColumns(rows.teacherHead, cols)), caps.teacher), T),
  };
}

/** Per row of a chunk, [R, 1] each. */
interface LogPartitions {
  student: tf.Tensor2D;
  teacher: tf.Tensor2D;
}

function chunkLogProbs(rows: Models, cols: Span, logZ: LogPartitions, plan: Plan): { logP: tf.Tensor2D; logQ: tf.Tensor2D } {
  return tf.tidy(() => {
    const { student, teacher } = chunkLogits(rows, cols, plan);
    return { logP: tf.sub(teacher, logZ.teacher), logQ: tf.sub(student, logZ.student) };
  });
}

/** h of the file comment: log q - log p (reverse KL), log q - log m (jsd); forward KL needs none. */
function studentScore(logP: tf.Tensor2D, logQ: tf.Tensor2D, options: DivergenceOptions): tf.Tensor2D | null {
  switch (effectiveDivergence(options)) {
    case 'forward_kl':
      return null;
    case 'reverse_kl':
      return tf.sub(logQ, logP) as tf.Tensor2D;
    case 'jsd':
      return tf.sub(logQ, logMixture(logP, logQ, options.beta)) as tf.Tensor2D;
  }
}

/** This chunk's share of E_Q[h] per row, [R]; 0 for forward KL, which has no h. */
function momentPart(logP: tf.Tensor2D, logQ: tf.Tensor2D, options: DivergenceOptions): tf.Tensor1D {
  const h = studentScore(logP, logQ, options);
  return (h === null ? tf.zeros([logQ.shape[0]]) : tf.sum(tf.mul(tf.exp(logQ), h), 1)) as tf.Tensor1D;
}

/** dD/ds for one chunk, [R, C]; moment is E_Q[h] per row, [R, 1]. */
function divergenceGradient(logP: tf.Tensor2D, logQ: tf.Tensor2D, moment: tf.Tensor, options: DivergenceOptions): tf.Tensor2D {
  const q = tf.exp(logQ);
  const h = studentScore(logP, logQ, options);
  if (h === null) return tf.sub(q, tf.exp(logP));
  const weight = effectiveDivergence(options) === 'jsd' ? 1 - options.beta : 1;
  return tf.mul(tf.mul(q, tf.sub(h, moment)), weight);
}

function sliceRows(models: Models, rows: Span): Models {
  const take = (x: tf.Tensor2D) => tf.slice(x, [rows.start, 0], [rows.size, x.shape[1]]);
  return { ...models, hidden: take(models.hidden), teacherHidden: take(models.teacherHidden) };
}

function sliceColumns(x: tf.Tensor2D, cols: Span): tf.Tensor2D {
  return tf.slice(x, [0, cols.start], [x.shape[0], cols.size]) as tf.Tensor2D;
}

/** Consecutive spans of at most `chunk` covering [0, total). */
function spans(total: number, chunk: number): Span[] {
  const result: Span[] = [];
  for (let start = 0; start < total; start += chunk) result.push({ start, size: Math.min(chunk, total - start) });
  return result;
}

/** combine(total, next), freeing both: one running total stays alive while the chunks stream through. */
function accumulate<R extends tf.Tensor>(total: R | null, next: R, combine: (a: R, b: R) => tf.Tensor = tf.add): R {
  if (total === null) return next;
  const result = combine(total, next) as R;
  total.dispose();
  next.dispose();
  return result;
}

/** log(e^a + e^b), elementwise and stable: the online step of a streamed logSumExp. */
function logAddExp(a: tf.Tensor1D, b: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const m = tf.maximum(a, b);
    return tf.add(m, tf.log(tf.add(tf.exp(tf.sub(a, m)), tf.exp(tf.sub(b, m))))) as tf.Tensor1D;
  });
}

function checkInput(input: ChunkedDistillInput, options: DivergenceOptions & ChunkSizes): void {
  const caller = 'chunkedFullDistillLoss';
  checkDivergenceOptions(options, caller);
  for (const key of ['rowChunk', 'vocabChunk'] as const) {
    if (!(Number.isInteger(options[key]) && options[key] > 0)) {
      throw new RangeError(`${caller}: options.${key} must be a positive integer, got ${options[key]}`);
    }
  }
  const { studentHidden, studentHead, teacherHidden, teacherHead, mask } = input;
  if (studentHidden.shape[0] === 0) throw new RangeError(`${caller}: studentHidden has no rows`);
  checkSameRows(caller, studentHidden, 'studentHidden', teacherHidden, 'teacherHidden');
  checkSameRows(caller, studentHidden, 'studentHidden', mask, 'mask');
  if (studentHidden.shape[1] !== studentHead.shape[0]) {
    throw new RangeError(`${caller}: studentHidden [${studentHidden.shape}] does not match studentHead [${studentHead.shape}]`);
  }
  if (teacherHidden.shape[1] !== teacherHead.shape[0]) {
    throw new RangeError(`${caller}: teacherHidden [${teacherHidden.shape}] does not match teacherHead [${teacherHead.shape}]`);
  }
}
