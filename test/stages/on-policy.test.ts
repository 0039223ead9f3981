import { describe, expect, it } from 'vitest';
import { hashString } from '../../datasets/split.ts';
import { initBackend } from '../../src/backend/index.ts';
import { generateTokens } from '../../src/model/generate.ts';
import { OnPolicyBatches } from '../../src/stages/on-policy.ts';
import type { Student } from '../../src/stages/student.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { tinyModel } from '../helpers/tiny-model.ts';

await initBackend('wasm');

describe('on-policy batches', () => {
  it("continue every row's prompt in one batched generation, as that row alone would with its seed, within its budget", async () => {
    const model = tinyModel({ vocabSize: 259 });
    const tokenizer = createByteLevelTokenizer();
    const student = { model, tokenizer, project: model.project, setTraining: () => {} } as unknown as Student;
    const prompts = [[5, 9, 2], [7, 1, 4, 8, 3, 6, 2, 2, 9], [11, 12]];
    const options = { lambda: 1, maxTokens: 5, temperature: 1, seed: 3, seqLen: 10, batchSize: 6 };
    const offPolicy = { nextBatch: () => Promise.reject(new Error('lambda 1 draws no stored batch')) };
    const batch = await new OnPolicyBatches(offPolicy, student, prompts, options).nextBatch();
    expect(batch.onPolicy).toBe(true);
    for (let row = 0; row < options.batchSize; row++) {
      const inputs = Array.from(batch.inputs.subarray(row * 10, (row + 1) * 10));
      const prompt = prompts.find((p) => p.every((id, t) => inputs[t] === id))!;
      expect(prompt, `row ${row} starts with a training prompt`).toBeDefined();
      // The row's sample, drawn alone with the row's seed: generateBatch's rows draw as generateTokens does.
      const budget = Math.min(options.maxTokens, options.seqLen + 1 - prompt.length);
      const scored = Array.from(batch.mask.subarray(row * 10, (row + 1) * 10));
      const response = Array.from(batch.targets.subarray(row * 10, (row + 1) * 10)).filter((_, t) => scored[t] === 1);
      expect(scored.slice(0, prompt.length - 1).every((m) => m === 0)).toBe(true);
      const alone: number[] = [];
      const seed = hashString(`sample 0 ${row}`, options.seed);
      for await (const id of generateTokens(model, prompt, { maxTokens: budget, temperature: 1, topK: 0, topP: 1, seed })) alone.push(id);
      expect(response).toEqual(alone);
    }
    model.dispose();
  });
});
