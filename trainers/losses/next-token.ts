import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../batches.ts';
import type { BatchLayout, CausalLM } from '../../src/model/causal-lm.ts';
import type { Projection } from '../../src/model/layers.ts';
import { chunkedTokenNll } from './chunked-cross-entropy.ts';
import { tokenNll } from './cross-entropy.ts';
import { maskWeights } from './masking.ts';

/** The model's view of a batch's rows: packed examples kept apart, when there are any. */
export function batchLayout(batch: Batch): BatchLayout | undefined {
  return batch.segments ? { segments: batch.segments } : undefined;
}

/**
 * Cross-entropy of the model's next-token predictions on a batch, over the positions its mask scores;
 * `project` carries adapters (LoRA) when the model has them.
 */
export function nextTokenLoss(model: CausalLM, batch: Batch, project: Projection = model.project): tf.Scalar {
  return tf.sum(tf.mul(nextTokenNll(model, batch, project), maskWeights(tf.tensor1d(batch.mask)))) as tf.Scalar;
}

/** Each position's negative log-likelihood of its target, [batchSize * seqLen]; a streamed head is used chunk by chunk. */
export function nextTokenNll(model: CausalLM, batch: Batch, project: Projection = model.project): tf.Tensor1D {
  const { batchSize: B, seqLen: T } = batch;
  const ids = tf.tensor2d(batch.inputs, [B, T], 'int32');
  const hidden = tf.reshape(model.hidden(ids, undefined, project, batchLayout(batch)), [B * T, model.config.hiddenSize]) as tf.Tensor2D;
  return model.streamedHead() ? chunkedTokenNll(hidden, model, batch.targets) : tokenNll(model.headLogits(hidden), tf.tensor1d(batch.targets, 'int32'));
}
