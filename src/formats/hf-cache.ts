/**
 * Models the Hugging Face Hub client has already downloaded, found offline by their Hub id
 * (`Qwen/Qwen2.5-0.5B-Instruct`, optionally `@revision`), in the cache it lays out:
 *
 *   <cache>/models--Qwen--Qwen2.5-0.5B-Instruct/
 *     refs/main                 the commit hash the branch or tag points at
 *     snapshots/<commit>/...    the files (links into blobs/)
 *
 * where <cache> is $HF_HUB_CACHE (or the older $HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub, as huggingface_hub decides it.
 * Nothing is downloaded.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from './format-error.ts';

/** `org/name` or `org/name@revision`: one slash, no leading `.` or `/` (those are paths). */
const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*(?:@[\w./-]+)?$/;

const COMMIT = /^[0-9a-f]{40}$/;

export class HubCacheError extends FormatError {
  constructor(id: string, detail: string) {
    super(id, 'HF_CACHE_MISSING', detail);
  }
}

/** Whether `ref` reads as a Hub id rather than a path (callers try it as a path first). */
export function isHubId(ref: string): boolean {
  return HUB_ID.test(ref);
}

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  if (explicit) return explicit;
  const home = env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

/**
 * The local copy of a Hub model: its snapshot folder, or the snapshot's one .gguf file when it has no
 * config.json (a GGUF-only repository). Throws HubCacheError naming where it looked.
 */
export function resolveHubModel(id: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!isHubId(id)) throw new HubCacheError(id, 'not a Hugging Face id (expected org/name or org/name@revision)');
  const [repo, revision = 'main'] = id.split('@');
  const cache = hubCacheDir(env);
  const repoDir = join(cache, `models--${repo.replace('/', '--')}`);
  if (!isDirectory(repoDir)) {
    throw new HubCacheError(
      id,
      `not in the Hugging Face cache: no ${repoDir} (the cache is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub; ` +
        `on a machine with network, \`huggingface-cli download ${repo}\` puts it there)`,
    );
  }
  const snapshot = join(repoDir, 'snapshots', commitOf(id, repoDir, revision));
  if (!isDirectory(snapshot)) throw new HubCacheError(id, `the cache names snapshot ${snapshot}, which is missing (an interrupted download?)`);
  const files = readdirSync(snapshot);
  if (files.includes('config.json')) return snapshot;
  const ggufs = files.filter((file) => file.endsWith('.gguf'));
  if (ggufs.length === 1) return join(snapshot, ggufs[0]);
  const found = ggufs.length > 1 ? `several .gguf files (${ggufs.join(', ')}): name one as a path` : 'no config.json and no .gguf file';
  throw new HubCacheError(id, `${snapshot} has ${found}`);
}

/** The commit a revision names: itself when it is a commit with a snapshot, else what refs/<revision> holds. */
function commitOf(id: string, repoDir: string, revision: string): string {
  if (COMMIT.test(revision) && isDirectory(join(repoDir, 'snapshots', revision))) return revision;
  const ref = join(repoDir, 'refs', revision);
  try {
    return readFileSync(ref, 'utf8').trim();
  } catch {
    const refs = (() => {
      try {
        return readdirSync(join(repoDir, 'refs'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
      } catch {
        return [];
      }
    })();
    throw new HubCacheError(id, `revision ${revision} is not in the cache: no ${ref}${refs.length > 0 ? ` (cached: ${refs.join(', ')})` : ''}`);
  }
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}
