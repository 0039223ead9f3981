/**
 * Generation ends at every eos id a model names: config.json's list, generation_config.json's (which
 * transformers' generate() prefers) and the tokenizer's, so a folder whose config lacks eos_token_id no
 * longer generates past it.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { generateTokens } from '../../src/model/generate.ts';
import { loadModelDir } from '../../src/model-files/load.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';

const tokenizer = createByteLevelTokenizer();
let dir: string;

beforeAll(async () => {
  await initBackend('cpu');
  dir = join(mkdtempSync(join(tmpdir(), 'slm-stop-')), 'model');
  const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2 });
  await writeHfModelDir(dir, { config, tensors: CausalLM.init(config, { seed: 4, std: 0.5 }).hfTensors(), dtype: 'F32', tokenizerJson: tokenizer.toJSON() });
});

async function greedy(maxTokens: number): Promise<number[]> {
  const { model } = await loadModelDir(dir);
  const ids: number[] = [];
  for await (const id of generateTokens(model, [65, 66], { maxTokens, seed: 0, temperature: 0, topK: 0, topP: 1 })) ids.push(id);
  model.dispose();
  return ids;
}

describe('stop tokens', () => {
  it('takes the tokenizer\'s eos when config.json names none, and every id of lists', async () => {
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(config.eos_token_id ?? null).toBeNull();
    expect((await loadModelDir(dir)).model.config.stopTokenIds).toEqual([tokenizer.eosId]);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, eos_token_id: [3, 9] }));
    const { model } = await loadModelDir(dir);
    expect(model.config.stopTokenIds).toEqual([3, 9, tokenizer.eosId]);
    expect(model.config.eosTokenId).toBe(3);
    model.dispose();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  });

  it('stops where generation_config.json says, as transformers does', async () => {
    const free = await greedy(6);
    expect(free).toHaveLength(6);
    const unused = [...Array(tokenizer.vocabSize).keys()].find((id) => !free.includes(id))!;
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [unused, free[2]] }));
    expect(await greedy(6)).toEqual(free.slice(0, free.indexOf(free[2]) + 1));
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 'x' }));
    await expect(loadModelDir(dir)).rejects.toThrow(/generation_config\.json: eos_token_id must be a token id or a list of them/);
  });
});
