/**
 * Ollama's model store on disk, read without the Ollama server (ollama/ollama `types/model/name.go`,
 * `server/manifest.go`, `server/modelpath.go`, `server/images.go` GetModel, `envconfig/config.go`):
 *
 *   $OLLAMA_MODELS (default ~/.ollama/models)/
 *     manifests/<host>/<namespace>/<model>/<tag>   JSON: {schemaVersion, mediaType, config, layers: [{mediaType, digest, size}]}
 *     blobs/sha256-<hex>                           one file per layer, named by its digest
 *
 * A name is `[host/][namespace/]model[:tag]`, defaulting to registry.ollama.ai/library/...:latest. The layers
 * that matter here: the GGUF weights (`application/vnd.ollama.image.model`), LoRA adapters (`.adapter`), the
 * prompt template (`.template`), system prompt (`.system`), default options (`.params`, JSON) and licenses.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FormatError, describeValue } from './format-error.ts';

export const OLLAMA_MEDIA_TYPES = {
  model: 'application/vnd.ollama.image.model',
  adapter: 'application/vnd.ollama.image.adapter',
  template: 'application/vnd.ollama.image.template',
  /** An older name of the template layer; GetModel still reads it as the template. */
  prompt: 'application/vnd.ollama.image.prompt',
  system: 'application/vnd.ollama.image.system',
  params: 'application/vnd.ollama.image.params',
  license: 'application/vnd.ollama.image.license',
} as const;

export interface OllamaRef {
  host: string;
  namespace: string;
  model: string;
  tag: string;
}

export interface OllamaModel {
  /** The shortest name Ollama displays for the model, e.g. `llama3.2:1b` or `me/tiny:latest`. */
  name: string;
  manifestPath: string;
  /** The GGUF file. */
  modelBlob: string;
  /** Blob paths of the LoRA adapters Ollama applies on top, in manifest order. */
  adapters: string[];
  template?: string;
  system?: string;
  /** Default request options (`temperature`, `stop`, `num_ctx`, ...). */
  params?: Record<string, unknown>;
  license?: string[];
}

export type OllamaStoreErrorCode = 'OLLAMA_BAD_NAME' | 'OLLAMA_UNKNOWN_MODEL' | 'OLLAMA_BAD_MANIFEST' | 'OLLAMA_MISSING_BLOB';

/** `file` is the manifest, blob or store the error is about (the reference itself for a bad name). */
export class OllamaStoreError extends FormatError {
  constructor(file: string, code: OllamaStoreErrorCode, detail: string) {
    super(file, code, detail);
  }
}

const DEFAULT_HOST = 'registry.ollama.ai';
const DEFAULT_NAMESPACE = 'library';
const DEFAULT_TAG = 'latest';
const REF_PREFIX = 'ollama:';
/** How many installed models an unknown-model error lists. */
const LISTED_MODELS = 10;

// ---- names ----------------------------------------------------------------------------------------------

/**
 * Parses `[ollama:][host/][namespace/]model[:tag]` as name.go's ParseName does (a `scheme://` before the host is
 * dropped), filling the defaults. The `ollama:` prefix is optional, so a model literally named "ollama" must
 * keep it: `ollama:ollama:latest`.
 */
export function parseOllamaRef(ref: string): OllamaRef {
  let rest = ref.startsWith(REF_PREFIX) ? ref.slice(REF_PREFIX.length) : ref;
  let tag = DEFAULT_TAG;
  // "/" cannot appear in a tag, so a ":" after the last "/" starts the tag (an earlier one is a host's port).
  if (rest.lastIndexOf(':') > rest.lastIndexOf('/')) [rest, tag] = cutLast(rest, ':');
  const parts = rest.split('/');
  const model = parts.pop()!;
  const namespace = parts.pop() ?? DEFAULT_NAMESPACE;
  const host = parts.length === 0 ? DEFAULT_HOST : withoutScheme(parts.join('/'));
  const parsed = { host, namespace, model, tag };
  const problem = invalidPart(parsed);
  if (problem) throw new OllamaStoreError(ref, 'OLLAMA_BAD_NAME', `not a valid Ollama model name: ${problem}`);
  return parsed;
}

/** name.go DisplayShortest: the default host and namespace are left out, the tag is always shown. */
export function ollamaDisplayName({ host, namespace, model, tag }: OllamaRef): string {
  if (host.toLowerCase() !== DEFAULT_HOST) return `${host}/${namespace}/${model}:${tag}`;
  if (namespace.toLowerCase() !== DEFAULT_NAMESPACE) return `${namespace}/${model}:${tag}`;
  return `${model}:${tag}`;
}

function cutLast(text: string, separator: string): [string, string] {
  const at = text.lastIndexOf(separator);
  return [text.slice(0, at), text.slice(at + separator.length)];
}

function withoutScheme(host: string): string {
  const at = host.indexOf('://');
  return at < 0 ? host : host.slice(at + 3);
}

/** name.go isValidPart for each part: length, then a first character and the characters allowed after it. */
const PART_RULES: Record<keyof OllamaRef, { maxLength: number; pattern: RegExp; allowed: string }> = {
  host: { maxLength: 350, pattern: /^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/, allowed: 'letters, digits, "_", "-", "." and ":"' },
  namespace: { maxLength: 80, pattern: /^[A-Za-z0-9_][A-Za-z0-9_-]*$/, allowed: 'letters, digits, "_" and "-"' },
  model: { maxLength: 80, pattern: /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, allowed: 'letters, digits, "_", "-" and "."' },
  tag: { maxLength: 80, pattern: /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, allowed: 'letters, digits, "_", "-" and "."' },
};

/** What is wrong with the first invalid part, or undefined when all are valid. */
function invalidPart(ref: OllamaRef): string | undefined {
  for (const part of ['host', 'namespace', 'model', 'tag'] as const) {
    const value = ref[part];
    const rule = PART_RULES[part];
    if (value.length === 0) return `the ${part} is empty (expected [host/][namespace/]model[:tag])`;
    if (value.length > rule.maxLength) return `the ${part} is longer than ${rule.maxLength} characters`;
    if (!rule.pattern.test(value)) {
      return `the ${part} ${JSON.stringify(value)} must start with a letter, digit or "_" and hold only ${rule.allowed}`;
    }
  }
  return undefined;
}

// ---- the store ------------------------------------------------------------------------------------------

/** envconfig.Models: $OLLAMA_MODELS with surrounding blanks and quotes removed, else ~/.ollama/models. */
export function ollamaModelsDir(env: NodeJS.ProcessEnv = process.env): string {
  const configured = (env.OLLAMA_MODELS ?? '').trim().replace(/^["']+|["']+$/g, '');
  return configured !== '' ? configured : join(homedir(), '.ollama', 'models');
}

export interface ResolveOptions {
  /** The store; default `ollamaModelsDir(env)`. */
  modelsDir?: string;
  env?: NodeJS.ProcessEnv;
}

/** The files and settings of an installed model; throws an OllamaStoreError that names the path at fault. */
export async function resolveOllamaModel(ref: string, options: ResolveOptions = {}): Promise<OllamaModel> {
  const parsed = parseOllamaRef(ref);
  const modelsDir = options.modelsDir ?? ollamaModelsDir(options.env);
  const manifestPath = join(modelsDir, 'manifests', parsed.host, parsed.namespace, parsed.model, parsed.tag);
  const text = await readFile(manifestPath, 'utf8').catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT' && error.code !== 'ENOTDIR' && error.code !== 'EISDIR') throw error;
    throw await unknownModel(parsed, modelsDir, manifestPath);
  });
  const layers = parseManifest(manifestPath, text);
  const blob = (layer: Layer) => join(modelsDir, 'blobs', layer.digest.replace(':', '-'));
  const ofType = (...mediaTypes: string[]) => layers.filter((layer) => mediaTypes.includes(layer.mediaType));

  // GetModel keeps the last model layer; Ollama merges split GGUFs into one, so there is one in practice.
  const modelLayer = ofType(OLLAMA_MEDIA_TYPES.model).at(-1);
  if (!modelLayer) {
    throw new OllamaStoreError(manifestPath, 'OLLAMA_BAD_MANIFEST', `has no layer of mediaType ${OLLAMA_MEDIA_TYPES.model} (not a GGUF model)`);
  }
  const read = (layer: Layer) => readBlob(manifestPath, layer, blob(layer));
  const templateLayer = ofType(OLLAMA_MEDIA_TYPES.template, OLLAMA_MEDIA_TYPES.prompt).at(-1);
  const systemLayer = ofType(OLLAMA_MEDIA_TYPES.system).at(-1);
  const paramsLayer = ofType(OLLAMA_MEDIA_TYPES.params).at(-1);
  const licenses = ofType(OLLAMA_MEDIA_TYPES.license);
  const model: OllamaModel = {
    name: ollamaDisplayName(parsed),
    manifestPath,
    modelBlob: await existingBlob(manifestPath, modelLayer, blob(modelLayer)),
    adapters: await Promise.all(ofType(OLLAMA_MEDIA_TYPES.adapter).map((layer) => existingBlob(manifestPath, layer, blob(layer)))),
  };
  if (templateLayer) model.template = await read(templateLayer);
  if (systemLayer) model.system = await read(systemLayer);
  if (paramsLayer) model.params = parseParams(blob(paramsLayer), await read(paramsLayer));
  if (licenses.length > 0) model.license = await Promise.all(licenses.map(read));
  return model;
}

/** Names of the installed models (manifests/<host>/<namespace>/<model>/<tag>), sorted; [] without a store. */
export async function listOllamaModels(modelsDir: string): Promise<string[]> {
  const manifests = join(modelsDir, 'manifests');
  const names: string[] = [];
  for (const host of await subdirectories(manifests)) {
    for (const namespace of await subdirectories(join(manifests, host))) {
      for (const model of await subdirectories(join(manifests, host, namespace))) {
        const tags = await readdir(join(manifests, host, namespace, model), { withFileTypes: true });
        for (const tag of tags.filter((entry) => entry.isFile())) {
          const ref = { host, namespace, model, tag: tag.name };
          // Ollama skips what is not a valid name (stray files such as .DS_Store).
          if (invalidPart(ref) === undefined) names.push(ollamaDisplayName(ref));
        }
      }
    }
  }
  return names.sort();
}

async function subdirectories(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

async function unknownModel(ref: OllamaRef, modelsDir: string, manifestPath: string): Promise<OllamaStoreError> {
  const installed = await listOllamaModels(modelsDir);
  const name = ollamaDisplayName(ref);
  if (installed.length === 0) {
    return new OllamaStoreError(
      manifestPath,
      'OLLAMA_UNKNOWN_MODEL',
      `model ${name} is not installed, and the store ${modelsDir} has no models (set OLLAMA_MODELS or modelsDir to the folder holding manifests/ and blobs/, or run \`ollama pull ${name}\`)`,
    );
  }
  const shown = installed.slice(0, LISTED_MODELS).join(', ');
  const more = installed.length > LISTED_MODELS ? ` and ${installed.length - LISTED_MODELS} more` : '';
  return new OllamaStoreError(manifestPath, 'OLLAMA_UNKNOWN_MODEL', `model ${name} is not installed; ${modelsDir} has ${shown}${more}`);
}

// ---- manifest and blobs ---------------------------------------------------------------------------------

interface Layer {
  mediaType: string;
  digest: string;
}

/** modelpath.go GetBlobsPath accepts only real sha256 digests. */
const DIGEST = /^sha256[:-][0-9a-fA-F]{64}$/;

function parseManifest(manifestPath: string, text: string): Layer[] {
  const bad = (detail: string): never => {
    throw new OllamaStoreError(manifestPath, 'OLLAMA_BAD_MANIFEST', `malformed manifest: ${detail}`);
  };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return bad(`invalid JSON (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || !Array.isArray((json as { layers?: unknown }).layers)) {
    return bad('expected an object with a "layers" array');
  }
  return ((json as { layers: unknown[] }).layers).map((layer, i) => {
    const { mediaType, digest } = (layer ?? {}) as Partial<Record<keyof Layer, unknown>>;
    if (typeof mediaType !== 'string') bad(`layers[${i}].mediaType: expected a string, got ${describeValue(mediaType)}`);
    if (typeof digest !== 'string' || !DIGEST.test(digest)) bad(`layers[${i}].digest: expected "sha256:<64 hex digits>", got ${describeValue(digest)}`);
    return { mediaType, digest } as Layer;
  });
}

async function existingBlob(manifestPath: string, layer: Layer, path: string): Promise<string> {
  const isFile = await stat(path).then(
    (stats) => stats.isFile(),
    () => false,
  );
  if (!isFile) throw missingBlob(manifestPath, layer, path);
  return path;
}

async function readBlob(manifestPath: string, layer: Layer, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw missingBlob(manifestPath, layer, path);
    throw error;
  }
}

function missingBlob(manifestPath: string, layer: Layer, path: string): OllamaStoreError {
  return new OllamaStoreError(path, 'OLLAMA_MISSING_BLOB', `blob not found: ${manifestPath} lists a ${layer.mediaType} layer with digest ${layer.digest}`);
}

function parseParams(path: string, text: string): Record<string, unknown> {
  let params: unknown;
  try {
    params = JSON.parse(text);
  } catch (error) {
    throw new OllamaStoreError(path, 'OLLAMA_BAD_MANIFEST', `params layer is not JSON (${(error as Error).message})`);
  }
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    throw new OllamaStoreError(path, 'OLLAMA_BAD_MANIFEST', `params layer: expected a JSON object, got ${describeValue(params)}`);
  }
  return params as Record<string, unknown>;
}
