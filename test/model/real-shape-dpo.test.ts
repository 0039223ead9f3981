/**
 * DPO at a real shape (Qwen2.5-0.5B's published config, random BF16 weights made here, cut to 2 layers with
 * its full 151,936-entry embedding): the sequence sums of a preference pair give LoRA the same gradients
 * through a base streamed from host memory (the head a vocabulary chunk at a time) as through the base held
 * in the backend. In a file of its own: the wasm heap never shrinks, and real-shape.test.ts fills it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import type { Batch } from '../../trainers/batches.ts';
import { initBackend } from '../../src/backend/index.ts';
import { shapeConfig, writeRandomModel } from '../../src/bench/model-shapes.ts';
import { loadModel } from '../../src/model-files/load.ts';
import { preferenceObjective } from '../../trainers/losses/preference-objective.ts';
import { adapterGradients, expectSameGradients } from '../helpers/lora.ts';

await initBackend('wasm');

const root = await mkdtemp(join(tmpdir(), 'slm-real-shape-dpo-'));
afterAll(() => rm(root, { recursive: true, force: true }));

const IDS = [151643, 791, 4062, 14198, 39935, 35308, 927, 279, 16053, 5679, 13, 578];

/** The 1 x T batch as a preference pair: itself chosen, its ids reversed rejected, the last 5 targets of each scored. */
function pairOf(batch: Batch): Batch {
  const T = batch.seqLen;
  const reversed = Int32Array.from(batch.inputs).reverse();
  const mask = new Float32Array(2 * T);
  mask.fill(1, T - 5, T);
  mask.fill(1, 2 * T - 5, 2 * T);
  return {
    inputs: Int32Array.from([...batch.inputs, ...reversed]),
    targets: Int32Array.from([...batch.targets, ...reversed.slice(1), reversed[0]]),
    mask,
    batchSize: 2,
    seqLen: T,
    tokens: 10,
    pairs: 1,
    referenceLogps: Float32Array.from([-60, -55]),
  };
}

describe('DPO at the shape of qwen2.5-0.5b cut to 2 layers', () => {
  it('gives LoRA (all-linear) the same gradients, RPO term included, through a streamed base as through a resident one', async () => {
    const dir = join(root, 'qwen2.5-0.5b');
    await writeRandomModel(dir, shapeConfig('qwen2.5-0.5b', 2), 11);
    const options = { loss: 'sigmoid' as const, beta: 0.1, labelSmoothing: 0, rpoAlpha: 1 };
    const grads = async (weights: 'streamed' | 'resident') => {
      const { model } = await loadModel(dir, { weights, pinBytes: 0 });
      const result = adapterGradients(model, IDS, (batch, project) => preferenceObjective(model, project, options)(pairOf(batch), () => {}));
      model.dispose();
      return result;
    };
    expectSameGradients(await grads('streamed'), await grads('resident'), 1e-3);
  });
});
