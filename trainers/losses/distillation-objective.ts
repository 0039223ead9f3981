/**
 * The training objective of a distillation run, per batch:
 *
 *   loss = (1 - alpha) * CE(labels) + alpha * mean over response tokens of T^2 * D(teacher_T || student_T)
 *
 * where the teacher's distribution comes from the batch's stored top-k soft labels, or from a teacher model
 * run on the same batch (the full distribution, computed in chunks so memory stays bounded). A batch with
 * neither is sequence-level distillation: CE on the teacher's text. The parts are reported as metrics.
 * On-policy batches (the student's own samples) always use the teacher model, with alpha = 1.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../batches.ts';
import { withoutGradients } from '../../src/backend/tape.ts';
import type { BatchLayout, CausalLM } from '../../src/model/causal-lm.ts';
import type { Projection } from '../../src/model/layers.ts';
import type { LossFn, MetricSink } from '../loop.ts';
import { chunkedCrossEntropy } from './chunked-cross-entropy.ts';
import { batchLayout } from './next-token.ts';
import { chunkedFullDistillLoss, type HeadRows } from './chunked-distill.ts';
import { crossEntropy } from './cross-entropy.ts';
import { teacherRowsDistill } from './teacher-rows-distill.ts';
import { combineLosses, maskedMean, top1Agreement, topKDistill, type DivergenceOptions } from './distill.ts';

export interface DistillObjectiveOptions extends DivergenceOptions {
  alpha: number;
  tail: 'bucket' | 'renormalize';
  /** The temperature the stored logprobs are at (the data manifest's). */
  storedTemperature: number;
  /** A teacher run on every batch, for full distributions. */
  online?: OnlineTeacher;
}

export interface OnlineTeacher {
  model: CausalLM;
  /** The teacher's projections: a LoRA teacher's adapter beside its base; the model's own by default. */
  project?: Projection;
  rowsPerChunk: number;
  vocabPerChunk: number;
}

export function distillationObjective(model: CausalLM, project: Projection, options: DistillObjectiveOptions): LossFn {
  return (batch, observe) => {
    const { batchSize: B, seqLen: T } = batch;
    const inputs = tf.tensor2d(batch.inputs, [B, T], 'int32');
    const layout = batchLayout(batch);
    const hidden = tf.reshape(model.hidden(inputs, undefined, project, layout), [B * T, -1]) as tf.Tensor2D;
    const mask = tf.tensor1d(batch.mask);
    const teacherHidden = () => onlineTeacherHidden(options.online!, inputs, layout);
    const combined = (ce: tf.Scalar, kd: tf.Scalar | null) => {
      observe('ce', ce);
      if (!kd) return ce;
      observe('kd', kd);
      // The student's own samples teach through the teacher's distribution alone (GKD): CE would reinforce them.
      return combineLosses(ce, kd, batch.onPolicy ? 1 : options.alpha);
    };
    if (!batch.softLabels && model.streamedHead()) {
      // A streamed head's [N, V] logits are never made: CE and online KD walk its vocabulary chunks.
      const ce = chunkedCrossEntropy(hidden, model, batch.targets, mask);
      return combined(ce, options.online ? streamedOnlineKd(model, hidden, teacherHidden(), mask, options.online, options, observe) : null);
    }
    const logits = model.headLogits(hidden); // [B*T, V]
    const ce = crossEntropy(logits, tf.tensor1d(batch.targets, 'int32'), mask);
    const kd = batch.softLabels
      ? storedKd(logits, batch, mask, options, observe)
      : options.online
        ? onlineKd(logits, teacherHidden(), mask, options.online, options, observe)
        : null;
    return combined(ce, kd);
  };
}

/** The teacher's final hidden states [B*T, Ht], off the tape: its activations (and streamed weights) need not wait for the backward pass. */
function onlineTeacherHidden(online: OnlineTeacher, inputs: tf.Tensor2D, layout: BatchLayout | undefined): tf.Tensor2D {
  const [B, T] = inputs.shape;
  return withoutGradients(() => tf.reshape(online.model.hidden(inputs, undefined, online.project, layout), [B * T, -1]) as tf.Tensor2D);
}

/** KD against the batch's top-k soft labels, over the scored positions that have them. */
function storedKd(logits: tf.Tensor2D, batch: Batch, mask: tf.Tensor1D, options: DistillObjectiveOptions, observe: MetricSink): tf.Scalar {
  const { k, ids, logprobs } = batch.softLabels!;
  const N = batch.batchSize * batch.seqLen;
  const teacherIds = tf.tensor2d(ids, [N, k], 'int32');
  const teacherLogprobs = tf.tensor2d(logprobs, [N, k]);
  const labelled = tf.mul(mask, tf.cast(tf.isFinite(tf.squeeze(tf.slice(teacherLogprobs, [0, 0], [N, 1]), [1])), 'float32')) as tf.Tensor1D;
  observe('top1_agreement', top1Agreement(logits, tf.squeeze(tf.slice(teacherIds, [0, 0], [N, 1]), [1]) as tf.Tensor1D, labelled));
  return maskedMean(topKDistill(logits, teacherIds, teacherLogprobs, options), labelled);
}

/**
 * KD against the full distribution of a teacher run on the same inputs (no gradient reaches the teacher),
 * from the student's logits; the teacher's are made a chunk of rows at a time from its final hidden states.
 */
function onlineKd(
  logits: tf.Tensor2D,
  teacherHidden: tf.Tensor2D,
  mask: tf.Tensor1D,
  online: OnlineTeacher,
  options: DistillObjectiveOptions,
  observe: MetricSink,
): tf.Scalar {
  const teacher = { hidden: teacherHidden, logits: (rows: tf.Tensor2D) => withoutGradients(() => online.model.headLogits(rows)) };
  const { loss, top1Agreement } = teacherRowsDistill(logits, teacher, mask, { ...options, rowChunk: online.rowsPerChunk });
  observe('top1_agreement', top1Agreement);
  return loss;
}

/**
 * Online KD for a student whose head is streamed (frozen): both heads are read a vocabulary chunk at a
 * time, so no [N, V] logits of either model exist.
 */
function streamedOnlineKd(
  model: CausalLM,
  hidden: tf.Tensor2D,
  teacherHidden: tf.Tensor2D,
  mask: tf.Tensor1D,
  online: OnlineTeacher,
  options: DistillObjectiveOptions,
  observe: MetricSink,
): tf.Scalar {
  const input = {
    studentHidden: hidden,
    studentHead: modelHead(model),
    teacherHidden,
    teacherHead: modelHead(online.model),
    mask,
    studentCap: model.config.finalLogitSoftcap,
    teacherCap: online.model.config.finalLogitSoftcap,
  };
  const { loss, top1Agreement } = chunkedFullDistillLoss(input, { ...options, rowChunk: online.rowsPerChunk, vocabChunk: online.vocabPerChunk });
  observe('top1_agreement', top1Agreement);
  return loss;
}

function modelHead(model: CausalLM): HeadRows {
  const { hiddenSize, vocabSize } = model.config;
  return { hidden: hiddenSize, vocab: vocabSize, withRows: (start, size, use) => model.withHeadRows(start, size, use) };
}
