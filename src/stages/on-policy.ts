/**
 * On-policy distillation (GKD, Agarwal et al. 2024): a share `lambda` of the batches are responses the
 * student samples itself to the training prompts, which the online teacher then scores. Learning from its
 * own mistakes closes the gap between the prefixes seen in training (the teacher's) and at inference (its own).
 *
 * Which batches are on-policy, which prompts they take and the sampling seeds all follow from the batch
 * number, so a resumed run draws exactly what an uninterrupted one would.
 */
import type { Batch } from '../../trainers/batches.ts';
import { hashString } from '../../datasets/split.ts';
import { padIdOf } from '../../datasets/text-dataset.ts';
import type { TextExample } from '../../trainers/packing.ts';
import type { BatchSource } from '../../trainers/loop.ts';
import { generateBatch } from '../model/generate.ts';
import type { Student } from './student.ts';

export interface OnPolicyOptions {
  lambda: number;
  maxTokens: number;
  temperature: number;
  seed: number;
  seqLen: number;
  batchSize: number;
}

export class OnPolicyBatches implements BatchSource {
  /** Batches drawn so far; the checkpointed step sets it on resume. */
  drawn = 0;

  constructor(
    private readonly offPolicy: BatchSource,
    private readonly student: Student,
    private readonly prompts: readonly number[][],
    private readonly options: OnPolicyOptions,
  ) {
    if (prompts.length === 0) throw new RangeError('on-policy distillation needs prompt/response training data: it has no prompts');
  }

  async nextBatch(): Promise<Batch> {
    const index = this.drawn++;
    if (unit(`on-policy ${index}`, this.options.seed) >= this.options.lambda) return this.offPolicy.nextBatch();
    return this.sampledBatch(index);
  }

  /**
   * batchSize prompts continued by the student in one batched generation: row r with its own seed, and
   * up to its own budget (maxTokens, and what seqLen + 1 leaves after its prompt).
   */
  private async sampledBatch(index: number): Promise<Batch> {
    const { batchSize, seqLen, maxTokens, temperature, seed } = this.options;
    const prompts = Array.from({ length: batchSize }, (_, row) => this.prompts[hashString(`prompt ${index} ${row}`, seed) % this.prompts.length].slice(0, seqLen));
    const budgets = prompts.map((prompt) => Math.max(0, Math.min(maxTokens, seqLen + 1 - prompt.length)));
    const padId = padIdOf(this.student.tokenizer);
    this.student.setTraining(false);
    let responses: number[][];
    try {
      responses = await generateBatch(this.student.model, prompts, {
        maxTokens: Math.max(...budgets),
        temperature,
        topK: 0,
        topP: 1,
        seed,
        seeds: prompts.map((_, row) => hashString(`sample ${index} ${row}`, seed)),
        padId,
        project: this.student.project,
        shouldStop: (row, ids) => ids.length >= budgets[row],
      });
    } finally {
      this.student.setTraining(true);
    }
    const rows: TextExample[] = prompts.map((prompt, row) => {
      const response = responses[row].slice(0, budgets[row]);
      return { ids: [...prompt, ...response], lossMask: [...prompt.map(() => 0), ...response.map(() => 1)] };
    });
    return { ...batchOf(rows, seqLen, padId), onPolicy: true };
  }
}

/** A uniform number in [0, 1) from a label and the seed. */
function unit(label: string, seed: number): number {
  return hashString(label, seed) / 2 ** 32;
}

/** Rows of up to seqLen + 1 tokens as one batch: inputs, next-token targets and the mask of the targets. */
function batchOf(rows: readonly TextExample[], seqLen: number, padId: number): Batch {
  const size = rows.length * seqLen;
  const batch: Batch = { inputs: new Int32Array(size).fill(padId), targets: new Int32Array(size).fill(padId), mask: new Float32Array(size), batchSize: rows.length, seqLen, tokens: 0 };
  rows.forEach((row, r) => {
    const length = Math.min(row.ids.length, seqLen + 1);
    for (let t = 0; t + 1 < length; t++) {
      batch.inputs[r * seqLen + t] = row.ids[t];
      batch.targets[r * seqLen + t] = row.ids[t + 1];
      batch.mask[r * seqLen + t] = row.lossMask[t + 1];
      batch.tokens += row.lossMask[t + 1];
    }
  });
  return batch;
}
