import type { ChatMessage } from '../../datasets/record-fields.ts';
import { TeacherConfigError } from './errors.ts';

/** What every teacher provider implements. */
export interface TeacherInfo {
  provider: 'ollama' | 'openai' | 'local';
  model: string;
  /** Ollama's weights digest. */
  digest?: string;
  serverVersion?: string;
  /** Whether `score` can label text the teacher did not generate. */
  canScore: boolean;
}

export type { ChatMessage };

export interface GenerateRequest {
  /** Either a prompt (the server applies the chat template) or messages. */
  prompt?: string;
  messages?: ChatMessage[];
  system?: string;
  maxTokens: number;
  temperature: number;
  /** Alternatives returned per generated token, 0..20. */
  topLogprobs: number;
  seed?: number;
  stop?: string[];
  /**
   * Send `prompt` as it is, with no chat template (OpenAI's /v1/completions, Ollama's `raw`), as
   * lm-evaluation-harness prompts base models [false].
   */
  raw?: boolean;
  /** Ask for token logprobs and require them [true]; false for text only (servers that have none). */
  logprobs?: boolean;
}

export interface TopLogprob {
  token: string;
  /** The token id, when the teacher shares the student's tokenizer (the local provider). */
  id?: number;
  /** UTF-8 bytes of the token, when the server sends them (a token may be part of a character). */
  bytes?: number[];
  logprob: number;
}

export interface TokenLogprob extends TopLogprob {
  top: TopLogprob[];
  /** Where the token starts in the scored text, when the server says (legacy completions' text_offset). */
  offset?: number;
}

export interface Sample {
  text: string;
  tokens: TokenLogprob[];
  finishReason: string;
}

export interface Teacher {
  info(): Promise<TeacherInfo>;
  generate(requests: GenerateRequest[]): Promise<Sample[]>;
  /** What identifies the served weights beyond the name, where the server says; null where it does not. */
  identity?(): Promise<Record<string, unknown> | null>;
  /** Per-position distributions over given texts, where the provider can (see TeacherInfo.canScore). */
  score?(texts: string[]): Promise<TokenLogprob[][]>;
}

export const MAX_TOP_LOGPROBS = 20;

/** Throws on a request no server would accept, naming the field; `index` locates it in the batch. */
export function validateGenerateRequest(request: GenerateRequest, index: number): void {
  const where = `generate request [${index}]`;
  if (request.prompt === undefined && (request.messages === undefined || request.messages.length === 0)) {
    throw new TeacherConfigError(`${where}: needs \`prompt\` or a non-empty \`messages\``);
  }
  if (request.raw && request.prompt === undefined) throw new TeacherConfigError(`${where}: \`raw\` needs \`prompt\``);
  const { topLogprobs, maxTokens } = request;
  if (!Number.isInteger(topLogprobs) || topLogprobs < 0 || topLogprobs > MAX_TOP_LOGPROBS) {
    throw new TeacherConfigError(`${where}: \`topLogprobs\` must be an integer in 0..${MAX_TOP_LOGPROBS}, got ${topLogprobs}`);
  }
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new TeacherConfigError(`${where}: \`maxTokens\` must be a positive integer, got ${maxTokens}`);
  }
}

export function wantsLogprobs(request: GenerateRequest): boolean {
  return request.logprobs ?? true;
}

/** One generated token as both Ollama and OpenAI chat send it. */
export interface WireLogprob {
  token: string;
  logprob: number;
  bytes?: number[] | null;
  top_logprobs?: { token: string; logprob: number; bytes?: number[] | null }[] | null;
}
