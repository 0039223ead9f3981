/**
 * A content digest of a model reference's weights and tokenizer: what caches key on, so a changed model
 * never reuses answers of the old one. Ollama names resolve to their model blob, whose file name already
 * is its sha256.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { resolveOllamaModel } from '../formats/ollama-store.ts';

/** Files of a Hugging Face folder that decide what the model computes. */
const MODEL_DIR_FILE = /^(config\.json|adapter_config\.json|tokenizer\.json|tokenizer_config\.json|.*\.safetensors)$/;

export async function modelDigest(ref: string, options: { ollamaModelsDir?: string } = {}): Promise<string> {
  if (ref.startsWith('ollama:')) {
    const { modelBlob } = await resolveOllamaModel(ref, { modelsDir: options.ollamaModelsDir });
    return basename(modelBlob).replace(/^sha256-/, 'sha256:');
  }
  const hash = createHash('sha256');
  if ((await stat(ref)).isDirectory()) {
    const names = (await readdir(ref)).filter((name) => MODEL_DIR_FILE.test(name)).sort();
    for (const name of names) {
      hash.update(`${name}\0`);
      await hashFile(join(ref, name), hash);
    }
  } else {
    await hashFile(ref, hash);
  }
  return `sha256:${hash.digest('hex')}`;
}

async function hashFile(path: string, hash: ReturnType<typeof createHash>): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}
