import { join } from 'node:path';
import { openHfWeights, readHfConfig } from '../formats/hf-model-dir.ts';
import { loadTokenizer } from '../tokenizer/hf-tokenizer.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { pathExists } from '../util/path-exists.ts';
import { CausalLM } from './causal-lm.ts';

export interface LoadedModel {
  model: CausalLM;
  /** Null when the directory has no tokenizer.json (score then needs ids). */
  tokenizer: Tokenizer | null;
}

/** A Hugging Face model directory (config.json + safetensors, tokenizer.json when present). */
export async function loadModelDir(dir: string): Promise<LoadedModel> {
  const { config } = await readHfConfig(dir);
  const weights = await openHfWeights(dir);
  try {
    const names = new Set(weights.names());
    const model = await CausalLM.fromHfTensors(config, (name) => (names.has(name) ? weights.read(name) : Promise.resolve(undefined)));
    const tokenizer = (await pathExists(join(dir, 'tokenizer.json'))) ? await loadTokenizer(dir) : null;
    return { model, tokenizer };
  } finally {
    weights.close();
  }
}
