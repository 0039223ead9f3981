import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { Completion } from 'openai/resources/completions';
import { TeacherConfigError, TeacherHttpError, TeacherResponseError, findTeacherError } from './errors.ts';
import { conversation } from '../../datasets/prompt-ids.ts';
import type { AnswerPath } from './answer-packing.mjs';
import { createTransport } from './http-transport.ts';
import type { Attempt, RequestPool } from './request-pool.ts';
import { MAX_TOP_LOGPROBS, validateGenerateRequest, wantsLogprobs } from './teacher.ts';
import type { GenerateRequest, Sample, Teacher, TeacherInfo, TokenLogprob, TopLogprob } from './teacher.ts';

export interface OpenAITeacherOptions {
  model: string;
  /** Endpoints are base URLs including the version, e.g. http://127.0.0.1:8000/v1. */
  pool: RequestPool;
  /** NAME of the environment variable holding the API key; local servers often need none. */
  apiKeyEnv?: string;
  /**
   * Whether the legacy completions endpoint scores given text (`echo` + `logprobs`, as vLLM does):
   * 'auto' asks the server once with a tiny probe.
   */
  score?: 'auto' | boolean;
  /** Alternatives per position when scoring; OpenAI itself caps this at 5, vLLM at its max_logprobs. */
  scoreTopLogprobs?: number;
  env?: NodeJS.ProcessEnv;
}

const PROBE_TEXT = 'Hello';
/** Where a chat completion lists its generated tokens' logprobs. */
const CHAT_LOGPROBS: AnswerPath = ['choices', 0, 'logprobs', 'content'];

/**
 * A teacher behind an OpenAI-compatible server (OpenAI, vLLM, llama.cpp server, ...). Generation uses chat
 * completions with logprobs; scoring uses legacy completions with echo where the server supports it.
 * The client's own retries are off: the request pool retries uniformly for every provider.
 */
export class OpenAITeacher implements Teacher {
  private readonly apiKey: string | undefined;
  private scoreSupport: Promise<boolean> | undefined;

  constructor(private readonly options: OpenAITeacherOptions) {
    this.apiKey = readApiKey(options.apiKeyEnv, options.env ?? process.env);
    const top = options.scoreTopLogprobs ?? 5;
    if (!Number.isInteger(top) || top < 0 || top > MAX_TOP_LOGPROBS) {
      throw new TeacherConfigError(`openai teacher: \`scoreTopLogprobs\` must be an integer in 0..${MAX_TOP_LOGPROBS}, got ${top}`);
    }
  }

  async info(): Promise<TeacherInfo> {
    return { provider: 'openai', model: this.options.model, canScore: await this.canScore() };
  }

  async generate(requests: GenerateRequest[]): Promise<Sample[]> {
    requests.forEach(validateGenerateRequest);
    return Promise.all(
      requests.map((request) =>
        this.options.pool.run((attempt) => (request.raw ? this.complete(attempt, request) : this.chat(attempt, request)), (sample) => sample.tokens.length),
      ),
    );
  }

  /**
   * What identifies the served model beyond its name: its /v1/models entry without the fields a server
   * makes up per request (`created`, `permission`), and the `system_fingerprint` of a one-token answer.
   * Null when neither says more than the name (an entry of only id, object and owned_by, no fingerprint).
   */
  async identity(): Promise<Record<string, unknown> | null> {
    const { model, pool } = this.options;
    const listing = await pool.run((attempt) => this.client(attempt).get('/models')).catch(() => undefined);
    const entries = (listing as { data?: unknown } | undefined)?.data;
    const entry = Array.isArray(entries) ? (entries.find((e) => (e as { id?: unknown })?.id === model) as Record<string, unknown> | undefined) : undefined;
    const { created: _created, permission: _permission, ...stable } = entry ?? {};
    const informative = Object.keys(stable).some((key) => !['id', 'object', 'owned_by'].includes(key));
    const probe = await pool
      .run((attempt) => this.fingerprint(attempt))
      .catch(() => undefined);
    if (!informative && !probe) return null;
    return { ...(informative && { entry: stable }), ...(probe && { systemFingerprint: probe }) };
  }

  async score(texts: string[]): Promise<TokenLogprob[][]> {
    if (!(await this.canScore())) {
      throw new TeacherConfigError(
        `openai teacher ${this.options.model}: this server cannot score given text (legacy completions with echo + logprobs); use a vLLM server or a local teacher`,
      );
    }
    return Promise.all(
      texts.map((text) => this.options.pool.run((attempt) => this.scoreOne(attempt, text), (tokens) => tokens.length)),
    );
  }

  private canScore(): Promise<boolean> {
    const setting = this.options.score ?? 'auto';
    if (setting !== 'auto') return Promise.resolve(setting);
    this.scoreSupport ??= this.probeScoring();
    return this.scoreSupport;
  }

  private async probeScoring(): Promise<boolean> {
    try {
      const tokens = await this.options.pool.run((attempt) => this.scoreOne(attempt, PROBE_TEXT));
      return tokens.length > 0;
    } catch (error) {
      const known = findTeacherError(error);
      if (known instanceof TeacherHttpError && !known.retryable) return false;
      if (known instanceof TeacherResponseError) return false;
      throw error;
    }
  }

  private async chat(attempt: Attempt, request: GenerateRequest): Promise<Sample> {
    const url = `${attempt.endpoint}/chat/completions`;
    const client = this.client(attempt, wantsLogprobs(request) ? CHAT_LOGPROBS : undefined);
    const response = await client.chat.completions.create({
      model: this.options.model,
      // Roles come from the data as strings; the server judges them, as it would any client's.
      messages: conversation(request) as ChatCompletionMessageParam[],
      max_tokens: request.maxTokens,
      temperature: request.temperature,
      seed: request.seed,
      stop: request.stop,
      ...(wantsLogprobs(request) && { logprobs: true, top_logprobs: request.topLogprobs }),
    });
    const choice = response?.choices?.[0];
    if (!choice) throw new TeacherResponseError(url, 'no `choices` in the answer');
    const text = choice.message?.content ?? '';
    if (!wantsLogprobs(request)) return { text, tokens: [], finishReason: choice.finish_reason ?? 'unknown' };
    // The transport has put TokenLogprobs in place of the wire list.
    const tokens = choice.logprobs?.content as unknown as TokenLogprob[] | null | undefined;
    if (!tokens && text.length > 0) throw new TeacherResponseError(url, 'no `choices[0].logprobs.content` in the answer (does the server give logprobs?)', { lacksFeature: true });
    return { text, tokens: tokens ?? [], finishReason: choice.finish_reason ?? 'unknown' };
  }

  /** A raw prompt through legacy completions; text only (its logprobs format is scoring's, not chat's). */
  private async complete(attempt: Attempt, request: GenerateRequest): Promise<Sample> {
    if (wantsLogprobs(request)) {
      throw new TeacherConfigError(`openai teacher ${this.options.model}: a raw prompt (/v1/completions) is generated as text only; set \`logprobs: false\``);
    }
    const url = `${attempt.endpoint}/completions`;
    const response: Completion = await this.client(attempt).completions.create({
      model: this.options.model,
      prompt: request.prompt ?? '',
      max_tokens: request.maxTokens,
      temperature: request.temperature,
      seed: request.seed,
      stop: request.stop,
    });
    const choice = response?.choices?.[0];
    if (!choice || typeof choice.text !== 'string') throw new TeacherResponseError(url, 'no `choices[0].text` in the answer');
    return { text: choice.text, tokens: [], finishReason: choice.finish_reason ?? 'unknown' };
  }

  /** The `system_fingerprint` of a one-token answer, if the server sends one. */
  private async fingerprint(attempt: Attempt): Promise<string | undefined> {
    const response = await this.client(attempt).chat.completions.create({
      model: this.options.model,
      messages: [{ role: 'user', content: PROBE_TEXT }],
      max_tokens: 1,
      temperature: 0,
    });
    return response?.system_fingerprint ?? undefined;
  }

  private async scoreOne(attempt: Attempt, text: string): Promise<TokenLogprob[]> {
    const url = `${attempt.endpoint}/completions`;
    const response: Completion = await this.client(attempt).completions.create({
      model: this.options.model,
      prompt: text,
      echo: true,
      logprobs: this.options.scoreTopLogprobs ?? 5,
      max_tokens: 0,
      temperature: 0,
    });
    const logprobs = response?.choices?.[0]?.logprobs;
    if (!logprobs?.tokens || !logprobs.token_logprobs) {
      throw new TeacherResponseError(url, 'no echoed `choices[0].logprobs.tokens` in the answer', { lacksFeature: true });
    }
    return fromLegacyLogprobs(logprobs, text.length);
  }

  /** A client whose requests go through a transport bound to the attempt; see createTransport for `logprobsAt`. */
  private client(attempt: Attempt, logprobsAt?: AnswerPath): OpenAI {
    return new OpenAI({
      baseURL: attempt.endpoint,
      apiKey: this.apiKey ?? 'none',
      maxRetries: 0,
      fetch: createTransport({ signal: attempt.signal, secret: this.apiKey, received: attempt.received, logprobsAt }),
    });
  }
}

/**
 * Legacy completions logprobs as TokenLogprobs over the echoed text only (a server may append generated
 * tokens, found by their text offsets). The first token has no context, so the server sends null for it:
 * it becomes logprob NaN with no alternatives.
 */
export function fromLegacyLogprobs(logprobs: Completion['choices'][number]['logprobs'] & object, textLength: number): TokenLogprob[] {
  const tokens = logprobs.tokens ?? [];
  const offsets = logprobs.text_offset;
  const result: TokenLogprob[] = [];
  for (let i = 0; i < tokens.length; i++) {
    if (offsets && offsets[i] >= textLength) break;
    const top: TopLogprob[] = Object.entries(logprobs.top_logprobs?.[i] ?? {})
      .map(([token, logprob]) => ({ token, logprob }))
      .sort((a, b) => b.logprob - a.logprob);
    const offset = offsets?.[i];
    result.push({ token: tokens[i], logprob: logprobs.token_logprobs?.[i] ?? Number.NaN, top, ...(offset !== undefined && { offset }) });
  }
  return result;
}

function readApiKey(name: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (name === undefined) return undefined;
  const value = env[name];
  if (!value) throw new TeacherConfigError(`openai teacher: environment variable ${name} (named by \`apiKeyEnv\`) is not set`);
  return value;
}
