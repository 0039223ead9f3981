/**
 * Hub ids resolved offline from a Hugging Face cache the test lays out as huggingface_hub does: blobs named
 * by hash, snapshots/<commit>/ holding links to them, refs/<branch or tag> holding the commit.
 */
import { mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { hubCacheDir, isHubId, resolveHubModel } from '../../src/formats/hf-cache.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { loadModel } from '../../src/model-files/load.ts';
import { parseRecipe } from '../../src/recipe/index.ts';
import { tinyModel } from '../helpers/tiny-model.ts';

await initBackend('wasm');

const root = await mkdtemp(join(tmpdir(), 'slm-hub-'));
const cache = join(root, 'hub');
afterAll(() => rm(root, { recursive: true, force: true }));

const COMMIT = 'a'.repeat(40);
const OLD_COMMIT = 'b'.repeat(40);

/** Moves `files` of `dir` into the cache as huggingface_hub stores them, under `commit`, with refs naming it. */
async function cacheAsHub(repo: string, dir: string, commit: string, refs: string[]): Promise<string> {
  const repoDir = join(cache, `models--${repo.replace('/', '--')}`);
  const snapshot = join(repoDir, 'snapshots', commit);
  await mkdir(join(repoDir, 'blobs'), { recursive: true });
  await mkdir(snapshot, { recursive: true });
  for (const file of await readdir(dir)) {
    const blob = createHash('sha256').update(await readFile(join(dir, file))).digest('hex');
    await rename(join(dir, file), join(repoDir, 'blobs', blob));
    await symlink(join('..', '..', 'blobs', blob), join(snapshot, file));
  }
  for (const ref of refs) {
    await mkdir(join(repoDir, 'refs'), { recursive: true });
    await writeFile(join(repoDir, 'refs', ref), commit);
  }
  return snapshot;
}

let snapshot = '';
const env = { HF_HUB_CACHE: cache };

beforeAll(async () => {
  const model = tinyModel({ modelType: 'qwen2', attentionBias: true, qkNorm: false, tieWordEmbeddings: true });
  const staging = join(root, 'staging');
  await writeHfModelDir(staging, { config: model.config, tensors: model.eachHfTensor(), dtype: 'F32' });
  model.dispose();
  snapshot = await cacheAsHub('acme/tiny-chat', staging, COMMIT, ['main', 'v1']);
  await mkdir(join(root, 'old'));
  await writeFile(join(root, 'old', 'config.json'), '{}');
  await cacheAsHub('acme/tiny-chat', join(root, 'old'), OLD_COMMIT, []);
  await mkdir(join(root, 'gguf'));
  await writeFile(join(root, 'gguf', 'tiny-q8_0.gguf'), 'GGUF');
  await writeFile(join(root, 'gguf', 'README.md'), 'a GGUF-only repository');
  await cacheAsHub('acme/tiny-GGUF', join(root, 'gguf'), COMMIT, ['main']);
});

describe('Hugging Face ids in the Hub cache', () => {
  it('resolve a branch, a tag or a commit to its snapshot; a GGUF-only repository to its one .gguf', () => {
    expect(resolveHubModel('acme/tiny-chat', env)).toBe(snapshot);
    expect(resolveHubModel('acme/tiny-chat@main', env)).toBe(snapshot);
    expect(resolveHubModel('acme/tiny-chat@v1', env)).toBe(snapshot);
    expect(resolveHubModel(`acme/tiny-chat@${OLD_COMMIT}`, env)).toBe(join(cache, 'models--acme--tiny-chat', 'snapshots', OLD_COMMIT));
    expect(resolveHubModel('acme/tiny-GGUF', env)).toBe(join(cache, 'models--acme--tiny-GGUF', 'snapshots', COMMIT, 'tiny-q8_0.gguf'));
  });

  it('say where they looked when the model or the revision is not there', () => {
    const repoDir = join(cache, 'models--acme--missing');
    expect(() => resolveHubModel('acme/missing', env)).toThrow(`acme/missing: not in the Hugging Face cache: no ${repoDir} (the cache is $HF_HUB_CACHE`);
    expect(() => resolveHubModel('acme/missing', env)).toThrow('`huggingface-cli download acme/missing`');
    expect(() => resolveHubModel('acme/tiny-chat@v2', env)).toThrow(
      `acme/tiny-chat@v2: revision v2 is not in the cache: no ${join(cache, 'models--acme--tiny-chat', 'refs', 'v2')} (cached: `,
    );
  });

  it('find the cache where huggingface_hub does', () => {
    expect(hubCacheDir({ HF_HUB_CACHE: '/a', HF_HOME: '/b' })).toBe('/a');
    expect(hubCacheDir({ HUGGINGFACE_HUB_CACHE: '/old' })).toBe('/old');
    expect(hubCacheDir({ HF_HOME: '/b', XDG_CACHE_HOME: '/c' })).toBe('/b/hub');
    expect(hubCacheDir({ XDG_CACHE_HOME: '/c' })).toBe('/c/huggingface/hub');
    expect(hubCacheDir({})).toMatch(/\.cache\/huggingface\/hub$/);
  });

  it('tell ids from paths', () => {
    for (const id of ['Qwen/Qwen2.5-0.5B-Instruct', 'meta-llama/Llama-3.2-1B@main', 'a/b@0123abc']) expect(isHubId(id), id).toBe(true);
    for (const path of ['./Qwen/x', '/models/x', 'model', 'a/b/c', 'ollama:qwen2.5', '../a/b']) expect(isHubId(path), path).toBe(false);
  });
});

describe('loading by Hugging Face id', () => {
  const saved = process.env.HF_HUB_CACHE;
  afterEach(() => {
    if (saved === undefined) delete process.env.HF_HUB_CACHE;
    else process.env.HF_HUB_CACHE = saved;
  });

  it('loads the cached snapshot, the same model as its folder', async () => {
    process.env.HF_HUB_CACHE = cache;
    const [byId, byPath] = [await loadModel('acme/tiny-chat'), await loadModel(snapshot)];
    const ids = tf.tensor2d([[1, 5, 9]], [1, 3], 'int32');
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(byId.model.forward(ids), byPath.model.forward(ids)))).dataSync()[0]);
    expect(diff).toBe(0);
    byId.model.dispose();
    byPath.model.dispose();
    await expect(loadModel('acme/missing')).rejects.toThrow('acme/missing: not in the Hugging Face cache');
  });

  it('takes an id as a recipe base, and reports one missing from the cache at its key', () => {
    process.env.HF_HUB_CACHE = cache;
    const recipe = (base: string) => `name: hub-lora\nstudent:\n  type: lora\n  base: ${base}\ndata:\n  train: train.jsonl\ntrain:\n  max_steps: 2\n`;
    const fixtures = join(import.meta.dirname, '..', 'recipe', 'fixtures');
    expect(parseRecipe(recipe('acme/tiny-chat'), 'recipe.yaml', fixtures).student).toMatchObject({ base: 'acme/tiny-chat' });
    expect(() => parseRecipe(recipe('acme/missing'), 'recipe.yaml', fixtures)).toThrow(
      `recipe.yaml:4:9: student.base: acme/missing: not in the Hugging Face cache: no ${join(cache, 'models--acme--missing')}`,
    );
  });
});
