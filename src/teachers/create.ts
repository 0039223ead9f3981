/** A recipe's `teacher:` section -> a live Teacher, with the request pool behind a server provider. */
import type { TeacherSpec } from '../recipe/index.ts';
import { LocalTeacher } from './local.ts';
import { OllamaTeacher } from './ollama.ts';
import { OpenAITeacher } from './openai.ts';
import { RequestPool, type PoolCounters } from './request-pool.ts';
import type { Teacher } from './teacher.ts';

export const DEFAULT_OLLAMA_ENDPOINT = 'http://127.0.0.1:11434';

export interface TeacherHandle {
  teacher: Teacher;
  /** Set for the local provider: it can score token ids directly. */
  local: LocalTeacher | null;
  /** Requests, retries and failures so far; null for the local provider, which sends none. */
  counters(): PoolCounters | null;
  /** Requests the stage may keep in flight. */
  concurrency: number;
  dispose(): void;
}

export interface CreateTeacherOptions {
  env?: NodeJS.ProcessEnv;
  logger?: { info(message: string): void };
}

export async function createTeacher(spec: TeacherSpec, options: CreateTeacherOptions = {}): Promise<TeacherHandle> {
  if (spec.provider === 'local') {
    const local = await LocalTeacher.load(spec.model, { logger: options.logger });
    // One model, one forward pass at a time: concurrent requests would only interleave.
    return { teacher: local, local, counters: () => null, concurrency: 1, dispose: () => local.dispose() };
  }
  const pool = new RequestPool({
    endpoints: spec.endpoints ?? [DEFAULT_OLLAMA_ENDPOINT],
    concurrency: spec.concurrency,
    requestsPerMinute: spec.requestsPerMinute ?? undefined,
    timeoutMs: spec.timeoutS * 1000,
    maxRetries: spec.maxRetries,
  });
  const teacher =
    spec.provider === 'ollama'
      ? new OllamaTeacher({ model: spec.model, pool })
      : new OpenAITeacher({ model: spec.model, pool, apiKeyEnv: spec.apiKeyEnv, env: options.env });
  return { teacher, local: null, counters: () => pool.stats(), concurrency: spec.concurrency, dispose: () => {} };
}
