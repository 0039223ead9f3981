import { Ollama } from 'ollama';
import type { ChatResponse, GenerateResponse } from 'ollama';
import { TeacherConfigError, TeacherResponseError } from './errors.ts';
import { conversation } from '../../datasets/prompt-ids.ts';
import type { AnswerPath } from './answer-packing.mjs';
import { createTransport } from './http-transport.ts';
import type { Attempt, RequestPool } from './request-pool.ts';
import { validateGenerateRequest, wantsLogprobs } from './teacher.ts';
import type { GenerateRequest, Sample, Teacher, TeacherInfo, TokenLogprob } from './teacher.ts';

/** Logprobs on /api/generate and /api/chat arrived in this server version. */
export const MIN_OLLAMA_VERSION = '0.12.11';

export interface OllamaTeacherOptions {
  model: string;
  /** Endpoints are the Ollama hosts, e.g. http://127.0.0.1:11434. */
  pool: RequestPool;
  keepAlive?: string | number;
}

/** Where /api/chat and /api/generate answers list their generated tokens' logprobs. */
const LOGPROBS: AnswerPath = ['logprobs'];

/**
 * A teacher served by Ollama's native API. It labels what it generates with per-token top-k logprobs;
 * it cannot score given text (no prompt logprobs, no echo), so it has no `score`.
 */
export class OllamaTeacher implements Teacher {
  private described: Promise<TeacherInfo> | undefined;

  constructor(private readonly options: OllamaTeacherOptions) {}

  info(): Promise<TeacherInfo> {
    this.described ??= this.describe();
    return this.described;
  }

  private async describe(): Promise<TeacherInfo> {
    const { model, pool } = this.options;
    const { version } = await pool.run((attempt) => this.call(attempt, (client) => client.version()));
    if (compareVersions(version, MIN_OLLAMA_VERSION) < 0) {
      throw new TeacherConfigError(
        `Ollama server version ${version} is too old: token logprobs need Ollama ${MIN_OLLAMA_VERSION}+; upgrade the server`,
      );
    }
    // /api/show has the architecture but no digest; the digest is listed by /api/tags.
    const [, tags] = await Promise.all([
      pool.run((attempt) => this.call(attempt, (client) => client.show({ model, verbose: true } as Parameters<Ollama['show']>[0]))),
      pool.run((attempt) => this.call(attempt, (client) => client.list())),
    ]);
    const listed = tags.models.find((entry) => entry.name === model || entry.model === model || entry.name === `${model}:latest`);
    return { provider: 'ollama', model, digest: listed?.digest, serverVersion: version, canScore: false };
  }

  async identity(): Promise<Record<string, unknown> | null> {
    const { digest } = await this.info();
    return digest ? { digest } : null;
  }

  async generate(requests: GenerateRequest[]): Promise<Sample[]> {
    requests.forEach(validateGenerateRequest);
    return Promise.all(
      requests.map((request) => this.options.pool.run((attempt) => this.generateOne(attempt, request), (sample) => sample.tokens.length)),
    );
  }

  private async generateOne(attempt: Attempt, request: GenerateRequest): Promise<Sample> {
    const common = {
      model: this.options.model,
      stream: false as const,
      keep_alive: this.options.keepAlive,
      ...(wantsLogprobs(request) && { logprobs: true, top_logprobs: request.topLogprobs }),
      options: { temperature: request.temperature, num_predict: request.maxTokens, seed: request.seed, stop: request.stop },
    };
    const logprobsAt = wantsLogprobs(request) ? LOGPROBS : undefined;
    if (request.messages) {
      const response: ChatResponse = await this.call(attempt, (client) => client.chat({ ...common, messages: conversation(request) }), logprobsAt);
      return toSample(`${attempt.endpoint}/api/chat`, response.message?.content, response, wantsLogprobs(request));
    }
    const response: GenerateResponse = await this.call(
      attempt,
      (client) => client.generate({ ...common, prompt: request.prompt ?? '', system: request.system, raw: request.raw }),
      logprobsAt,
    );
    return toSample(`${attempt.endpoint}/api/generate`, response.response, response, wantsLogprobs(request));
  }

  /** One client call through a transport bound to the attempt; see createTransport for `logprobsAt`. */
  private call<T>(attempt: Attempt, request: (client: Ollama) => Promise<T>, logprobsAt?: AnswerPath): Promise<T> {
    return request(new Ollama({ host: attempt.endpoint, fetch: createTransport({ signal: attempt.signal, received: attempt.received, logprobsAt }) }));
  }
}

function toSample(url: string, text: string | undefined, response: { done_reason?: string; logprobs?: unknown }, withLogprobs: boolean): Sample {
  if (typeof text !== 'string') throw new TeacherResponseError(url, 'no generated text in the answer');
  if (!withLogprobs) return { text, tokens: [], finishReason: response.done_reason ?? 'unknown' };
  if (!Array.isArray(response.logprobs) && text.length > 0) {
    throw new TeacherResponseError(url, `no \`logprobs\` in the answer; token logprobs need Ollama ${MIN_OLLAMA_VERSION}+`, { lacksFeature: true });
  }
  // The transport has put TokenLogprobs in place of the wire list.
  return { text, tokens: (response.logprobs as TokenLogprob[] | undefined) ?? [], finishReason: response.done_reason ?? 'unknown' };
}

/** Compares dotted numeric versions, ignoring any pre-release suffix ("0.13.0-rc1" counts as 0.13.0). */
export function compareVersions(a: string, b: string): number {
  const parts = (version: string) => version.replace(/^v/, '').split('-')[0].split('.').map((part) => Number.parseInt(part, 10) || 0);
  const [left, right] = [parts(a), parts(b)];
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const difference = (left[i] ?? 0) - (right[i] ?? 0);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}
