/**
 * Model files that lie about themselves are refused before anything is allocated, naming the file and
 * what is wrong: configs with more layers or parameters than the weights hold, and weights with NaN or Inf.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { CompactTensor } from '../../src/formats/compact-tensor.ts';
import { exportGguf } from '../../src/model-files/gguf-model.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { inspectModel, loadModel, loadModelDir } from '../../src/model-files/load.ts';
import { FIXTURE_TOKENIZER } from '../fixtures/gguf/tokenizers.ts';

const TINY_LLAMA = join(import.meta.dirname, '../fixtures/hf/tiny-llama');

beforeAll(async () => {
  await initBackend('wasm');
});

/** A copy of the tiny Llama fixture with `changes` made to its config.json. */
function withConfig(changes: Record<string, unknown>): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'slm-malformed-')), 'model');
  cpSync(TINY_LLAMA, dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, ...changes }));
  return dir;
}

describe('a config that does not fit its weights', () => {
  it('refuses num_hidden_layers beyond the layers the safetensors hold, at once', async () => {
    const dir = withConfig({ num_hidden_layers: 1000 });
    const expected = `${join(dir, 'config.json')}: num_hidden_layers is 1000, but the weights hold 2 layer(s) (model.layers.0 .. model.layers.1)`;
    await expect(loadModel(dir)).rejects.toThrow(expected);
    await expect(inspectModel(dir)).rejects.toThrow(expected);
    await expect(loadModel(withConfig({ num_hidden_layers: 1e9 }))).rejects.toThrow(/config\.json: .*numLayers must be at most 10000, got 1000000000/);
  });

  it('refuses sizes that describe more parameters than the weights hold', async () => {
    await expect(loadModel(withConfig({ intermediate_size: 1e9 }))).rejects.toThrow(/config\.json: the config describes [\d,]+ parameters, but the weights hold [\d,]+ values/);
  });

  it('refuses a GGUF whose block_count exceeds its blocks', async () => {
    const { model } = await loadModelDir(TINY_LLAMA);
    const path = join(mkdtempSync(join(tmpdir(), 'slm-malformed-')), 'tiny.gguf');
    await exportGguf(model, FIXTURE_TOKENIZER, path, { type: 'F32', name: 'tiny' });
    model.dispose();
    // The key, then its value type (u32), then the value: rewrite the value in place.
    const bytes = readFileSync(path);
    const at = bytes.indexOf('llama.block_count') + 'llama.block_count'.length + 4;
    expect(bytes.readUInt32LE(at)).toBe(2);
    bytes.writeUInt32LE(1000, at);
    writeFileSync(path, bytes);
    await expect(loadModel(path)).rejects.toThrow(`${path}: llama.block_count is 1000, but the weights hold 2 layer(s) (blk.0 .. blk.1)`);
    bytes.writeUInt32LE(1e9, at);
    writeFileSync(path, bytes);
    await expect(loadModel(path)).rejects.toThrow(/numLayers must be at most 10000, got 1000000000/);
  });
});

describe('weights holding NaN or Inf', () => {
  it.each([
    ['F32', 'resident', Number.NaN],
    ['BF16', 'streamed', Number.POSITIVE_INFINITY],
    ['F16', 'streamed', Number.NaN],
  ] as const)('%s weights, %s: refused at load naming the tensor', async (dtype, weights, bad) => {
    const config = resolveModelConfig({ vocabSize: 64, hiddenSize: 16, intermediateSize: 32, numLayers: 2, numHeads: 2 });
    const model = CausalLM.init(config, { seed: 1 });
    const tensors = model.hfTensors();
    model.dispose();
    const damaged = tensors.find((t) => t.name === 'model.layers.1.mlp.down_proj.weight')!;
    damaged.data[37] = bad;
    const dir = join(mkdtempSync(join(tmpdir(), 'slm-nan-')), 'model');
    await writeHfModelDir(dir, { config, tensors, dtype });
    await expect(loadModel(dir, { weights })).rejects.toThrow(`${dir}: tensor 'model.layers.1.mlp.down_proj.weight' holds NaN or Inf (at element 37)`);
  });
});

describe('CompactTensor.firstNonFinite', () => {
  it('finds a NaN or Inf float16 scale in quantized blocks, naming the block\'s first value', () => {
    const q8 = new Uint8Array(2 * 34);
    q8[34 + 1] = 0x7e; // block 1's d: f16 NaN
    expect(new CompactTensor('Q8_0', [2, 32], q8).firstNonFinite()).toBe(32);
    const q6 = new Uint8Array(2 * 210);
    expect(new CompactTensor('Q6_K', [2, 256], q6).firstNonFinite()).toBe(-1);
    q6[210 + 208 + 1] = 0x7c; // block 1's d: f16 +Inf
    expect(new CompactTensor('Q6_K', [2, 256], q6).firstNonFinite()).toBe(256);
    const q4k = new Uint8Array(144);
    q4k[3] = 0xfc; // dmin: f16 -Inf
    expect(new CompactTensor('Q4_K', [1, 256], q4k).firstNonFinite()).toBe(0);
  });
});
