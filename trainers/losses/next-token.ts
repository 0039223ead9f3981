import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../../datasets/batches.ts';
import type { BatchLayout, CausalLM } from '../../src/model/causal-lm.ts';
import type { Projection } from '../../src/model/layers.ts';
import { chunkedCrossEntropy } from './chunked-cross-entropy.ts';
import { crossEntropy } from './cross-entropy.ts';

/** The model's view of a batch's rows: packed examples kept apart, when there are any. */
export function batchLayout(batch: Batch): BatchLayout | undefined {
  return batch.segments ? { segments: batch.segments } : undefined;
}

/**
 * Cross-entropy of the model's next-token predictions on a batch, over the positions its mask scores;
 * `project` carries adapters (LoRA) when the model has them. A streamed head is used chunk by chunk.
 */
export function nextTokenLoss(model: CausalLM, batch: Batch, project: Projection = model.project): tf.Scalar {
  const { batchSize: B, seqLen: T } = batch;
  const ids = tf.tensor2d(batch.inputs, [B, T], 'int32');
  const mask = tf.tensor1d(batch.mask);
  const layout = batchLayout(batch);
  if (model.streamedHead()) {
    const hidden = tf.reshape(model.hidden(ids, undefined, project, layout), [B * T, model.config.hiddenSize]) as tf.Tensor2D;
    return chunkedCrossEntropy(hidden, model, batch.targets, mask);
  }
  const logits = model.forward(ids, undefined, project, layout); // [B, T, V]
  return crossEntropy(tf.reshape(logits, [B * T, model.config.vocabSize]) as tf.Tensor2D, tf.tensor1d(batch.targets, 'int32'), mask);
}
