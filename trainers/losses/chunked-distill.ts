import * as tf from '@tensorflow/tfjs-core';
import {
  checkDivergenceOptions,
  checkSameRows,
  divergenceTerms,
  effectiveDivergence,
  studentScore,
  type DivergenceOptions,
} from './distill.ts';
import { softcap, softcapSlope } from '../../src/model/softcap.ts';
import { maskedMean, maskWeights } from './masking.ts';
import { withoutGradients } from '../../src/backend/tape.ts';

/**
 * Full-vocabulary distillation from an in-process teacher without materializing [N, V] logits: the loss of
 * fullDistill's masked mean, computed rowChunk x vocabChunk logits at a time, forward and backward. It is
 * the path of students whose output head is frozen and streamed (real-size LoRA bases): both heads are read
 * a vocabulary span at a time, and only the student's hidden states get a gradient, so memory stays flat
 * in the vocabulary.
 *
 * Pass 1 streams the log-partitions of both models over the vocabulary chunks (an online logSumExp); pass 2
 * recomputes each chunk's logits and sums the divergence. The gradient recomputes them once more and
 * applies a written-out dD/dz, because autodiff would keep every chunk's logits alive. Each pass walks the
 * vocabulary outermost, so a streamed head's rows are fetched once per pass.
 *
 * With s = z / T and Q = softmax(s), any D(P, Q) has dD/ds_j = q_j (g_j - E_Q[g]) with g = dD/dq:
 * - forward KL: g = -p / q and E_Q[g] = -1, so dD/ds = q - p;
 * - reverse KL: g = log q - log p + 1, so dD/ds = q (h - E_Q[h]) with h = log q - log p (E_Q[h] = D);
 * - jsd: the terms of dD/dq through M cancel, leaving g = (1 - beta) h with h = log q - log m, so
 *   dD/ds = (1 - beta) q (h - E_Q[h]).
 * E_Q[h] needs the whole row, so pass 2 also sums it (the "student moment") for the backward pass.
 * The loss is T^2 * D averaged over the mask, so dL/dz = T * weight * dD/ds.
 */

/**
 * An output head read a vocabulary span at a time ([size, H] rows: logits are hidden @ rows^T, freed after
 * `use`), frozen.
 */
export interface HeadRows {
  /** Its input width H and vocabulary V. */
  hidden: number;
  vocab: number;
  withRows<T>(start: number, size: number, use: (rows: tf.Tensor2D) => T): T;
}

/** A resident [H, V] head as HeadRows. */
export function headTensorRows(head: tf.Tensor2D): HeadRows {
  const [hidden, vocab] = head.shape;
  return {
    hidden,
    vocab,
    withRows: (start, size, use) => {
      const rows = tf.tidy(() => tf.transpose(tf.slice(head, [0, start], [hidden, size])) as tf.Tensor2D);
      try {
        return use(rows);
      } finally {
        rows.dispose();
      }
    },
  };
}

export interface ChunkedDistillInput {
  studentHidden: tf.Tensor2D; // [N, H] final normed hidden states of the student at the scored positions (gets a gradient)
  studentHead: HeadRows; // an [H, V] head
  teacherHidden: tf.Tensor2D; // [N, Ht] (no gradient)
  teacherHead: HeadRows; // an [Ht, Vt] head
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

/** The loss, and the share of masked positions where the student's top token is the teacher's. */
export interface ChunkedDistillResult {
  loss: tf.Scalar;
  top1Agreement: tf.Scalar;
}

/**
 * Masked mean over positions of T^2 * D between teacher and student over their shared vocabulary range
 * min(V, Vt), with a gradient for studentHidden. Equals
 * maskedMean(fullDistill(studentHidden @ studentHead, teacherHidden @ teacherHead), mask). The top-1
 * agreement (over the same range) comes from the first pass's running maxima.
 */
export function chunkedFullDistillLoss(input: ChunkedDistillInput, options: DivergenceOptions & ChunkSizes): ChunkedDistillResult {
  checkInput(input, options);
  const { teacherHidden, mask } = input;
  const T = options.temperature;
  const V = Math.min(input.studentHead.vocab, input.teacherHead.vocab);
  const plan: Plan = {
    rows: spans(input.studentHidden.shape[0], options.rowChunk),
    vocab: spans(V, options.vocabChunk),
    options,
    caps: { student: input.studentCap ?? null, teacher: input.teacherCap ?? null },
    heads: { student: input.studentHead, teacher: input.teacherHead },
  };
  return tf.tidy(() => {
    // Off the tape: the gradient is written out below.
    const stats = withoutGradients(() => rowStatistics(plan, { student: input.studentHidden, teacher: teacherHidden }));
    const lossWithGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [hidden, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
      const weights = maskWeights(mask); // [N]
      save([hidden, teacherHidden, weights, stats.studentLogZ, stats.teacherLogZ, stats.studentMoment]);
      return {
        value: tf.mul(tf.sum(tf.mul(stats.divergence, weights)), T * T) as tf.Scalar,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => [backward(plan, saved, dy)]),
      };
    }) as (hidden: tf.Tensor2D) => tf.Scalar;
    const agrees = tf.cast(tf.equal(stats.studentTop, stats.teacherTop), 'float32') as tf.Tensor1D;
    return { loss: lossWithGrad(input.studentHidden), top1Agreement: maskedMean(agrees, mask) };
  });
}

/** Positions or vocabulary entries [start, start + size). */
export interface Span {
  start: number;
  size: number;
}

interface Plan {
  rows: Span[];
  vocab: Span[]; // covers [0, min(V, Vt))
  options: DivergenceOptions;
  caps: { student: number | null; teacher: number | null };
  heads: { student: HeadRows; teacher: HeadRows };
}

/** Both models' final hidden states, [N, H] and [N, Ht] (or a row chunk of them). */
interface Hidden {
  student: tf.Tensor2D;
  teacher: tf.Tensor2D;
}

/** Both heads' rows for one vocabulary chunk, [C, H] and [C, Ht]. */
interface HeadChunkRows {
  student: tf.Tensor2D;
  teacher: tf.Tensor2D;
}

/** Per row, [N] each: both log-partitions at temperature T, D, E_Q[h] (see the file comment), and both top tokens. */
type RowStatistics = {
  studentLogZ: tf.Tensor1D;
  teacherLogZ: tf.Tensor1D;
  divergence: tf.Tensor1D;
  studentMoment: tf.Tensor1D;
  studentTop: tf.Tensor1D;
  teacherTop: tf.Tensor1D;
};

/** Runs `each` for every vocabulary chunk with both heads' rows for it, freed after. */
function forEachVocabChunk(plan: Plan, each: (heads: HeadChunkRows, vocab: Span) => void): void {
  const { student, teacher } = plan.heads;
  for (const vocab of plan.vocab) {
    const { start, size } = vocab;
    student.withRows(start, size, (s) => teacher.withRows(start, size, (t) => each({ student: s, teacher: t }, vocab)));
  }
}

/** One running total per row chunk; `add` frees what it replaces. */
class RowTotals {
  private readonly totals: (tf.Tensor | null)[];

  constructor(plan: Plan) {
    this.totals = plan.rows.map(() => null);
  }

  add(row: number, next: tf.Tensor, combine: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor = tf.add): void {
    this.totals[row] = accumulate(this.totals[row], next, combine);
  }

  get(row: number): tf.Tensor {
    return this.totals[row]!;
  }

  /** All rows' totals, joined along the first axis; the parts are freed. */
  join(): tf.Tensor {
    const joined = tf.concat(this.totals as tf.Tensor[]);
    tf.dispose(this.totals as tf.Tensor[]);
    return joined;
  }
}

function rowStatistics(plan: Plan, hidden: Hidden): RowStatistics {
  const studentLogZ = new RowTotals(plan);
  const teacherLogZ = new RowTotals(plan);
  const studentBest = new RowTotals(plan); // [R, 2]: each row's largest logit so far, and its id
  const teacherBest = new RowTotals(plan);
  forEachVocabChunk(plan, (heads, vocab) =>
    plan.rows.forEach((rows, r) => {
      const [s, t, sBest, tBest] = tf.tidy(() => {
        const { student, teacher } = chunkLogits(sliceRows(hidden, rows), heads, plan);
        return [tf.logSumExp(student, 1), tf.logSumExp(teacher, 1), chunkBest(student, vocab.start), chunkBest(teacher, vocab.start)];
      });
      studentLogZ.add(r, s, logAddExp);
      teacherLogZ.add(r, t, logAddExp);
      studentBest.add(r, sBest, larger);
      teacherBest.add(r, tBest, larger);
    }),
  );
  const divergence = new RowTotals(plan);
  const studentMoment = new RowTotals(plan);
  forEachVocabChunk(plan, (heads) =>
    plan.rows.forEach((rows, r) => {
      const [d, m] = tf.tidy(() => {
        const logZ = { student: tf.expandDims(studentLogZ.get(r), 1), teacher: tf.expandDims(teacherLogZ.get(r), 1) } as LogPartitions;
        const { logP, logQ } = chunkLogProbs(sliceRows(hidden, rows), heads, logZ, plan);
        // Separate tidies free each formula's [R, C] temporaries before the next one makes its own.
        const divergencePart = tf.tidy(() => tf.sum(divergenceTerms(logP, logQ, plan.options), 1));
        return [divergencePart, tf.tidy(() => momentPart(logP, logQ, plan.options))];
      });
      divergence.add(r, d);
      studentMoment.add(r, m);
    }),
  );
  const topOf = (best: RowTotals) => tf.tidy(() => tf.squeeze(tf.slice(best.join(), [0, 1], [-1, 1]), [1])) as tf.Tensor1D;
  return {
    studentLogZ: studentLogZ.join() as tf.Tensor1D,
    teacherLogZ: teacherLogZ.join() as tf.Tensor1D,
    divergence: divergence.join() as tf.Tensor1D,
    studentMoment: studentMoment.join() as tf.Tensor1D,
    studentTop: topOf(studentBest),
    teacherTop: topOf(teacherBest),
  };
}

/** Each row's largest logit in a vocabulary chunk and its id (the chunk starting at `start`), [R, 2]. */
function chunkBest(logits: tf.Tensor2D, start: number): tf.Tensor2D {
  return tf.stack([tf.max(logits, 1), tf.add(tf.cast(tf.argMax(logits, 1), 'float32'), start)], 1) as tf.Tensor2D;
}

/** Row by row, the (logit, id) pair with the larger logit; an earlier chunk wins a tie, as argMax's first index does. */
function larger(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const bWins = tf.greater(tf.slice(b, [0, 0], [-1, 1]), tf.slice(a, [0, 0], [-1, 1])); // [R, 1]
  return tf.where(tf.tile(bWins, [1, 2]), b, a);
}

/** dL/d hidden, walking the same chunks as the forward pass. */
function backward(plan: Plan, saved: tf.Tensor[], dy: tf.Tensor): tf.Tensor2D {
  const [student, teacher, weights, studentLogZ, teacherLogZ, studentMoment] = saved as tf.Tensor2D[];
  const { options } = plan;
  const T = options.temperature;
  const perRow = tf.stack([studentLogZ, teacherLogZ, studentMoment, tf.mul(tf.mul(weights, dy), T)], 1); // [N, 4]
  const dHidden = new RowTotals(plan); // [R, H] each
  forEachVocabChunk(plan, (heads) =>
    plan.rows.forEach((rows, r) => {
      const part = tf.tidy(() => {
        const [logZS, logZT, moment, scale] = tf.split(tf.slice(perRow, [rows.start, 0], [rows.size, 4]), 4, 1); // [R, 1] each
        const { logP, logQ } = chunkLogProbs(sliceRows({ student, teacher }, rows), heads, { student: logZS, teacher: logZT } as LogPartitions, plan);
        const dCapped = tf.tidy(() => tf.mul(divergenceGradient(logP, logQ, moment, options), scale)); // [R, C]
        // Through the cap: its slope at the capped logits, which are (log q + log Z) * T.
        const cap = plan.caps.student;
        const dLogits = cap === null ? dCapped : tf.mul(dCapped, softcapSlope(tf.mul(tf.add(logQ, logZS), T), cap));
        return tf.matMul(dLogits, heads.student); // [R, H]
      });
      dHidden.add(r, part);
    }),
  );
  return dHidden.join() as tf.Tensor2D;
}

/** Both models' (capped) logits at temperature T for one chunk of rows and vocabulary: [R, C] each. */
function chunkLogits(rows: Hidden, heads: HeadChunkRows, { options, caps }: Plan): { student: tf.Tensor2D; teacher: tf.Tensor2D } {
  const T = options.temperature;
  const atTemperature = (logits: tf.Tensor2D) => (T === 1 ? logits : (tf.div(logits, T) as tf.Tensor2D));
  return {
    student: atTemperature(softcap(tf.matMul(rows.student, heads.student, false, true), caps.student)),
    teacher: atTemperature(softcap(tf.matMul(rows.teacher, heads.teacher, false, true), caps.teacher)),
  };
}

/** Per row of a chunk, [R, 1] each. */
interface LogPartitions {
  student: tf.Tensor2D;
  teacher: tf.Tensor2D;
}

function chunkLogProbs(rows: Hidden, heads: HeadChunkRows, logZ: LogPartitions, plan: Plan): { logP: tf.Tensor2D; logQ: tf.Tensor2D } {
  return tf.tidy(() => {
    const { student, teacher } = chunkLogits(rows, heads, plan);
    return { logP: tf.sub(teacher, logZ.teacher), logQ: tf.sub(student, logZ.student) };
  });
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

function sliceRows(hidden: Hidden, rows: Span): Hidden {
  const take = (x: tf.Tensor2D) => tf.slice(x, [rows.start, 0], [rows.size, x.shape[1]]);
  return { student: take(hidden.student), teacher: take(hidden.teacher) };
}

/** Consecutive spans of at most `chunk` covering [0, total). */
export function spans(total: number, chunk: number): Span[] {
  const result: Span[] = [];
  for (let start = 0; start < total; start += chunk) result.push({ start, size: Math.min(chunk, total - start) });
  return result;
}

/** combine(total, next), freeing both: one running total stays alive while the chunks stream through. */
function accumulate(total: tf.Tensor | null, next: tf.Tensor, combine: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): tf.Tensor {
  if (total === null) return next;
  const result = tf.tidy(() => combine(total, next));
  total.dispose();
  next.dispose();
  return result;
}

/** log(e^a + e^b), elementwise and stable: the online step of a streamed logSumExp. */
function logAddExp(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const m = tf.maximum(a, b);
  return tf.add(m, tf.log(tf.add(tf.exp(tf.sub(a, m)), tf.exp(tf.sub(b, m)))));
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
  if (studentHidden.shape[1] !== studentHead.hidden) {
    throw new RangeError(`${caller}: studentHidden [${studentHidden.shape}] does not match studentHead [${studentHead.hidden}, ${studentHead.vocab}]`);
  }
  if (teacherHidden.shape[1] !== teacherHead.hidden) {
    throw new RangeError(`${caller}: teacherHidden [${teacherHidden.shape}] does not match teacherHead [${teacherHead.hidden}, ${teacherHead.vocab}]`);
  }
}
