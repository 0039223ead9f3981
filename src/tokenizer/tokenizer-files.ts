/**
 * A model reference's tokenizer files as a Hugging Face folder holds them: its own tokenizer.json and
 * tokenizer_config.json, or both converted from a GGUF's metadata (a .gguf file, or ollama:NAME). What a
 * written model folder (an export, a fully trained student's final/) carries beside its weights.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { GgufFile } from '../formats/gguf/index.ts';
import { resolveOllamaModel } from '../formats/ollama-store.ts';
import { SlmError } from '../util/errors.ts';
import { pathExists } from '../util/path-exists.ts';
import { readJsonFile } from '../util/read-json.ts';
import { ggufTokenizerFiles } from './gguf-tokenizer.ts';
import type { TokenizerConfigJson } from './special-tokens.ts';

export interface TokenizerFiles {
  json: string;
  config?: TokenizerConfigJson;
}

/** The GGUF behind a model reference (a file, or ollama:NAME), or null for a Hugging Face folder, as loadModel tells them apart. */
export async function openGgufSource(source: string): Promise<GgufFile | null> {
  if (source.startsWith('ollama:')) return GgufFile.open((await resolveOllamaModel(source)).modelBlob);
  return (await stat(source)).isDirectory() ? null : GgufFile.open(source);
}

export async function tokenizerFiles(source: string): Promise<TokenizerFiles> {
  const file = await openGgufSource(source);
  if (file) {
    try {
      const { tokenizerJson, tokenizerConfig } = ggufTokenizerFiles(file.metadata.values(), { source: file.path });
      return { json: JSON.stringify(tokenizerJson), config: tokenizerConfig };
    } finally {
      await file.close();
    }
  }
  const json = await readFile(join(source, 'tokenizer.json'), 'utf8');
  const configPath = join(source, 'tokenizer_config.json');
  const config = (await pathExists(configPath))
    ? ((await readJsonFile(configPath, (_, detail, cause) => new SlmError(`${configPath}: ${detail}`, { code: 'ERR_MODEL', cause }))) as TokenizerConfigJson)
    : undefined;
  return { json, config };
}
