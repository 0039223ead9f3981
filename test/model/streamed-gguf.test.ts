/**
 * GGUF bases stay in their quantized blocks when streamed: llama's interleaved q/k rows are reordered and
 * the blocks decoded per layer, giving the logits of the same file loaded as float32 variables.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { exportGguf } from '../../src/model-files/gguf-model.ts';
import { loadModel, loadModelDir } from '../../src/model-files/load.ts';
import { FIXTURE_TOKENIZER } from '../fixtures/gguf/tokenizers.ts';

await initBackend('wasm');

const dir = await mkdtemp(join(tmpdir(), 'slm-streamed-gguf-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
const FIXTURES = join(import.meta.dirname, '../fixtures/hf');

describe.each([['tiny-llama'], ['tiny-qwen2']])('a %s GGUF streamed from its blocks', (fixture) => {
  it.each(['Q8_0', 'F16'] as const)('%s: logits equal the resident model, compact types kept', async (type) => {
    const { model } = await loadModelDir(join(FIXTURES, fixture));
    const path = join(dir, `${fixture}-${type}.gguf`);
    await exportGguf(model, FIXTURE_TOKENIZER, path, { type, name: 'tiny' });
    model.dispose();
    const resident = (await loadModel(path, { weights: 'resident' })).model;
    const streamed = (await loadModel(path, { weights: 'streamed', pinBytes: 0 })).model;
    const types = new Set(streamed.frozen!.names().map((name) => streamed.frozen!.compact(name).type));
    expect(types.has(type)).toBe(true);
    const ids = tf.tensor2d([[1, 17, 42, 5, 63, 8, 23, 0]], [1, 8], 'int32');
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(streamed.forward(ids), resident.forward(ids)))).dataSync()[0]);
    expect(diff).toBeLessThan(1e-5);
    resident.dispose();
    streamed.dispose();
  });
});
