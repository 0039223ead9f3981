import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  OLLAMA_MEDIA_TYPES,
  OllamaStoreError,
  listOllamaModels,
  ollamaModelsDir,
  parseOllamaRef,
  resolveOllamaModel,
} from '../../src/formats/ollama-store.ts';

/** A store in a temp dir, written the way Ollama writes it: blobs named by the sha256 of their bytes. */
class FakeStore {
  readonly dir = mkdtempSync(join(tmpdir(), 'ollama-store-'));

  blob(content: string): { digest: string; path: string } {
    const hex = createHash('sha256').update(content).digest('hex');
    const path = join(this.dir, 'blobs', `sha256-${hex}`);
    mkdirSync(join(this.dir, 'blobs'), { recursive: true });
    writeFileSync(path, content);
    return { digest: `sha256:${hex}`, path };
  }

  layer(mediaType: string, content: string) {
    const { digest } = this.blob(content);
    return { mediaType, digest, size: Buffer.byteLength(content) };
  }

  manifest(parts: [host: string, namespace: string, model: string, tag: string], body: unknown): string {
    const path = join(this.dir, 'manifests', ...parts);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, typeof body === 'string' ? body : JSON.stringify(body));
    return path;
  }

  model(parts: [string, string, string, string], layers: object[]): string {
    const config = this.layer('application/vnd.docker.container.image.v1+json', '{"model_format":"gguf"}');
    return this.manifest(parts, { schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config, layers });
  }
}

const LIBRARY = ['registry.ollama.ai', 'library'] as const;

describe('parseOllamaRef', () => {
  it.each([
    ['ollama:llama3.2', { host: 'registry.ollama.ai', namespace: 'library', model: 'llama3.2', tag: 'latest' }],
    ['llama3.2:1b', { host: 'registry.ollama.ai', namespace: 'library', model: 'llama3.2', tag: '1b' }],
    ['ollama:me/tiny:q8_0', { host: 'registry.ollama.ai', namespace: 'me', model: 'tiny', tag: 'q8_0' }],
    ['localhost:5000/me/tiny', { host: 'localhost:5000', namespace: 'me', model: 'tiny', tag: 'latest' }],
    ['https://example.com/me/tiny:v1.5', { host: 'example.com', namespace: 'me', model: 'tiny', tag: 'v1.5' }],
    ['ollama:ollama:latest', { host: 'registry.ollama.ai', namespace: 'library', model: 'ollama', tag: 'latest' }],
  ])('%s', (ref, expected) => {
    expect(parseOllamaRef(ref)).toEqual(expected);
  });

  it.each([
    ['ollama:llama3:', 'the tag is empty'],
    ['ollama:/llama3', 'the namespace is empty'],
    ['ollama:my.ns/llama3', 'the namespace "my.ns" must start with a letter, digit or "_" and hold only letters, digits, "_" and "-"'],
    ['ollama:a/b/c/d', 'the host "a/b"'],
    ['ollama:-x', 'the model "-x" must start with a letter, digit or "_"'],
    ['ollama:', 'the model is empty'],
  ])('refuses %s', (ref, detail) => {
    expect(() => parseOllamaRef(ref)).toThrow(`${ref}: not a valid Ollama model name: ${detail}`);
    expect(() => parseOllamaRef(ref)).toThrow(OllamaStoreError);
  });
});

describe('ollamaModelsDir', () => {
  it('is $OLLAMA_MODELS without surrounding blanks and quotes, else ~/.ollama/models', () => {
    expect(ollamaModelsDir({ OLLAMA_MODELS: ' "/data/ollama" ' })).toBe('/data/ollama');
    expect(ollamaModelsDir({ OLLAMA_MODELS: '' })).toBe(join(homedir(), '.ollama', 'models'));
    expect(ollamaModelsDir({})).toBe(join(homedir(), '.ollama', 'models'));
  });
});

describe('resolveOllamaModel', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  function storeWithLlama() {
    const store = new FakeStore();
    const gguf = store.layer(OLLAMA_MEDIA_TYPES.model, 'GGUF fake weights');
    const adapter = store.layer(OLLAMA_MEDIA_TYPES.adapter, 'GGUF fake lora');
    const manifestPath = store.model([...LIBRARY, 'llama3.2', '1b'], [
      gguf,
      store.layer(OLLAMA_MEDIA_TYPES.template, '{{ .System }}\n{{ .Prompt }}'),
      store.layer(OLLAMA_MEDIA_TYPES.system, 'Be brief.'),
      store.layer(OLLAMA_MEDIA_TYPES.params, '{"stop":["<|eot_id|>"],"temperature":0.6}'),
      store.layer(OLLAMA_MEDIA_TYPES.license, 'LLAMA 3.2 COMMUNITY LICENSE'),
      store.layer(OLLAMA_MEDIA_TYPES.license, 'Acceptable Use Policy'),
      adapter,
    ]);
    return { store, manifestPath, gguf, adapter };
  }

  it('reads every layer of an explicit tag', async () => {
    const { store, manifestPath, gguf, adapter } = storeWithLlama();
    const model = await resolveOllamaModel('ollama:llama3.2:1b', { modelsDir: store.dir });
    expect(model).toEqual({
      name: 'llama3.2:1b',
      manifestPath,
      modelBlob: join(store.dir, 'blobs', gguf.digest.replace(':', '-')),
      adapters: [join(store.dir, 'blobs', adapter.digest.replace(':', '-'))],
      template: '{{ .System }}\n{{ .Prompt }}',
      system: 'Be brief.',
      params: { stop: ['<|eot_id|>'], temperature: 0.6 },
      license: ['LLAMA 3.2 COMMUNITY LICENSE', 'Acceptable Use Policy'],
    });
    expect(readFileSync(model.modelBlob, 'utf8')).toBe('GGUF fake weights');
  });

  it('defaults the tag to latest and leaves absent layers out', async () => {
    const store = new FakeStore();
    store.model([...LIBRARY, 'qwen2.5', 'latest'], [store.layer(OLLAMA_MEDIA_TYPES.model, 'GGUF qwen')]);
    const model = await resolveOllamaModel('ollama:qwen2.5', { modelsDir: store.dir });
    expect(model.name).toBe('qwen2.5:latest');
    expect(model.manifestPath).toBe(join(store.dir, 'manifests', ...LIBRARY, 'qwen2.5', 'latest'));
    expect(model.adapters).toEqual([]);
    expect(Object.keys(model).sort()).toEqual(['adapters', 'manifestPath', 'modelBlob', 'name']);
  });

  it('finds models under an explicit namespace and host', async () => {
    const store = new FakeStore();
    store.model(['registry.ollama.ai', 'me', 'tiny', 'latest'], [store.layer(OLLAMA_MEDIA_TYPES.model, 'GGUF mine')]);
    store.model(['localhost:5000', 'team', 'tiny', 'q8'], [store.layer(OLLAMA_MEDIA_TYPES.model, 'GGUF team')]);
    const mine = await resolveOllamaModel('ollama:me/tiny', { modelsDir: store.dir });
    const team = await resolveOllamaModel('ollama:localhost:5000/team/tiny:q8', { modelsDir: store.dir });
    expect([mine.name, readFileSync(mine.modelBlob, 'utf8')]).toEqual(['me/tiny:latest', 'GGUF mine']);
    expect([team.name, readFileSync(team.modelBlob, 'utf8')]).toEqual(['localhost:5000/team/tiny:q8', 'GGUF team']);
  });

  it('reads the store from OLLAMA_MODELS when no modelsDir is given', async () => {
    const { store } = storeWithLlama();
    vi.stubEnv('OLLAMA_MODELS', `'${store.dir}'`);
    expect((await resolveOllamaModel('llama3.2:1b')).system).toBe('Be brief.');
    expect((await resolveOllamaModel('llama3.2:1b', { env: { OLLAMA_MODELS: store.dir } })).system).toBe('Be brief.');
  });

  it('names an unknown model, its manifest path and the installed models', async () => {
    const { store } = storeWithLlama();
    store.model(['registry.ollama.ai', 'me', 'tiny', 'latest'], [store.layer(OLLAMA_MEDIA_TYPES.model, 'GGUF')]);
    const missing = join(store.dir, 'manifests', ...LIBRARY, 'llama3.2', '3b');
    await expect(resolveOllamaModel('ollama:llama3.2:3b', { modelsDir: store.dir })).rejects.toThrow(
      `${missing}: model llama3.2:3b is not installed; ${store.dir} has llama3.2:1b, me/tiny:latest`,
    );
  });

  it('lists at most ten installed models and counts the rest', async () => {
    const store = new FakeStore();
    const layers = [store.layer(OLLAMA_MEDIA_TYPES.model, 'GGUF')];
    for (let i = 0; i < 12; i++) store.model([...LIBRARY, `m${String(i).padStart(2, '0')}`, 'latest'], layers);
    const error = await resolveOllamaModel('ollama:other', { modelsDir: store.dir }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(OllamaStoreError);
    expect((error as OllamaStoreError).code).toBe('OLLAMA_UNKNOWN_MODEL');
    expect((error as Error).message).toMatch(/has m00:latest, m01:latest, .*, m09:latest and 2 more$/);
  });

  it('says when the store holds no models at all', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'ollama-empty-'));
    await expect(resolveOllamaModel('ollama:llama3.2', { modelsDir: empty })).rejects.toThrow(
      `model llama3.2:latest is not installed, and the store ${empty} has no models`,
    );
  });

  it('names the missing blob and the manifest that lists it', async () => {
    const store = new FakeStore();
    const digest = `sha256:${'ab'.repeat(32)}`;
    const manifestPath = store.model([...LIBRARY, 'gone', 'latest'], [{ mediaType: OLLAMA_MEDIA_TYPES.model, digest, size: 1 }]);
    await expect(resolveOllamaModel('gone', { modelsDir: store.dir })).rejects.toThrow(
      `${join(store.dir, 'blobs', `sha256-${'ab'.repeat(32)}`)}: blob not found: ${manifestPath} lists a ${OLLAMA_MEDIA_TYPES.model} layer with digest ${digest}`,
    );
    const withTemplate = store.model([...LIBRARY, 'half', 'latest'], [
      store.layer(OLLAMA_MEDIA_TYPES.model, 'GGUF'),
      { mediaType: OLLAMA_MEDIA_TYPES.template, digest, size: 1 },
    ]);
    await expect(resolveOllamaModel('half', { modelsDir: store.dir })).rejects.toThrow(`blob not found: ${withTemplate} lists a ${OLLAMA_MEDIA_TYPES.template}`);
  });

  it.each([
    ['{"layers": [', 'malformed manifest: invalid JSON'],
    ['{"schemaVersion": 2}', 'malformed manifest: expected an object with a "layers" array'],
    [{ layers: [{ mediaType: OLLAMA_MEDIA_TYPES.model, digest: 'sha256:xyz' }] }, 'malformed manifest: layers[0].digest: expected "sha256:<64 hex digits>", got "sha256:xyz"'],
    [{ layers: [{ digest: `sha256:${'0'.repeat(64)}` }] }, 'malformed manifest: layers[0].mediaType: expected a string'],
    [{ layers: [] }, `has no layer of mediaType ${OLLAMA_MEDIA_TYPES.model}`],
  ])('names the manifest when it is malformed: %j', async (body, detail) => {
    const store = new FakeStore();
    const manifestPath = store.manifest([...LIBRARY, 'broken', 'latest'], body);
    const error = await resolveOllamaModel('broken', { modelsDir: store.dir }).then(
      () => expect.unreachable(),
      (e: OllamaStoreError) => e,
    );
    expect(error.message).toContain(`${manifestPath}: ${detail}`);
    expect(error.code).toBe('OLLAMA_BAD_MANIFEST');
  });

  it('refuses a params layer that is not a JSON object, naming the blob', async () => {
    const store = new FakeStore();
    const params = store.blob('[1, 2]');
    store.model([...LIBRARY, 'odd', 'latest'], [
      store.layer(OLLAMA_MEDIA_TYPES.model, 'GGUF'),
      { mediaType: OLLAMA_MEDIA_TYPES.params, digest: params.digest, size: 6 },
    ]);
    await expect(resolveOllamaModel('odd', { modelsDir: store.dir })).rejects.toThrow(`${params.path}: params layer: expected a JSON object, got [1,2]`);
  });
});

describe('listOllamaModels', () => {
  it('walks manifests/ for host/namespace/model/tag files and skips what is not a valid name', async () => {
    const store = new FakeStore();
    store.manifest([...LIBRARY, 'llama3.2', '1b'], '{}');
    store.manifest(['example.com', 'team', 'tiny', 'v1'], '{}');
    store.manifest([...LIBRARY, 'llama3.2', '.DS_Store'], '');
    expect(await listOllamaModels(store.dir)).toEqual(['example.com/team/tiny:v1', 'llama3.2:1b']);
    expect(await listOllamaModels(join(store.dir, 'nowhere'))).toEqual([]);
  });
});
