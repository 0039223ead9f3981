import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { parseAnswer, type AnswerPath } from './answer-packing.mjs';
import { parseLabeledAnswer } from './answer-parser.ts';
import { TeacherHttpError, TeacherNetworkError, TeacherResponseError } from './errors.ts';
import { parseRetryAfter } from './retry-policy.ts';

export interface TransportOptions {
  /** Aborts the request (the pool's per-attempt timeout). */
  signal: AbortSignal;
  /** Removed from any text that ends up in an error message. */
  secret?: string;
  nowMs?: () => number;
  /** Called once the whole body has been read (the request pool's `Attempt.received`). */
  received?: () => void;
  /**
   * Where the answer lists its generated tokens' logprobs (['choices', 0, 'logprobs', 'content'] for OpenAI
   * chat, ['logprobs'] for Ollama): the answer is then parsed off the main thread and the list comes back
   * as TokenLogprob[] in its place.
   */
  logprobsAt?: AnswerPath;
}

export interface RawAnswer {
  status: number;
  statusText: string;
  headers: Headers;
  body: Buffer;
}

const EXCERPT_CHARS = 200;
const NULL_BODY_STATUSES = new Set([204, 205, 304]);

/**
 * A `fetch` to hand to the provider clients (ollama, openai), on node:http's keep-alive agents: undici's
 * fetch costs several points of the labeling ideal in per-request overhead (`slm-train bench`). It reads
 * the whole body, so a dropped connection and a non-2xx status surface here as TeacherErrors that name
 * the URL, the same for every client. It parses the body as JSON too (both APIs answer JSON), so a body
 * that is not JSON is a TeacherResponseError, and the Response it returns hands the parsed value to the
 * client's `json()`. `received` is reported before parsing: the request's slot goes to the next request,
 * which is sent before this answer is parsed. Posting to the parse worker wakes it, and on a busy machine
 * the woken worker can take the CPU from this thread for its whole parse: a millisecond or two that the
 * next request would otherwise wait.
 */
export function createTransport(options: TransportOptions): typeof fetch {
  const nowMs = options.nowMs ?? Date.now;
  return async (input, init) => {
    const url = urlOf(input);
    const where = stripQuery(url);
    const signal = init?.signal ? AbortSignal.any([init.signal, options.signal]) : options.signal;
    let answer: RawAnswer;
    try {
      answer = await sendWhole(url, init, signal);
    } catch (error) {
      if (options.signal.aborted) throw options.signal.reason ?? error;
      throw new TeacherNetworkError(where, error);
    }
    options.received?.();
    const { status, statusText, headers, body } = answer;
    if (status < 200 || status >= 300) {
      const excerpt = redact(body.subarray(0, 4 * EXCERPT_CHARS).toString('utf8').slice(0, EXCERPT_CHARS), options.secret);
      throw new TeacherHttpError(where, status, excerpt, parseRetryAfter(headers.get('retry-after'), nowMs()));
    }
    if (NULL_BODY_STATUSES.has(status)) return new Response(null, { status, statusText, headers });
    // The slot is free: let the next request go out before this body is handed over for parsing.
    await new Promise((resolve) => setImmediate(resolve));
    const parsed = options.logprobsAt ? await parseLabeledAnswer(body, options.logprobsAt) : parseAnswer(body, undefined);
    if ('problem' in parsed) throw new TeacherResponseError(where, parsed.problem);
    headers.set('content-type', 'application/json');
    return new ParsedResponse(parsed.json, { status, statusText, headers });
  };
}

/** A Response whose body the transport has parsed already: `json()` returns the parsed value. */
class ParsedResponse extends Response {
  constructor(
    private readonly parsed: unknown,
    init: ResponseInit,
  ) {
    super(null, init);
  }

  override json(): Promise<unknown> {
    return Promise.resolve(this.parsed);
  }
}

/** One request over node:http(s) and the whole answer, unparsed. */
export function sendWhole(url: string, init: RequestInit | undefined, signal?: AbortSignal): Promise<RawAnswer> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  const body = requestBody(init?.body);
  const headers = Object.fromEntries(new Headers(init?.headers));
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    // Chunks gathered by hand: stream/consumers' buffer() goes through a Blob, a copy and a quarter of a
    // millisecond more per labeled answer.
    const req = request(url, { method: init?.method ?? 'GET', headers, signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: responseHeaders(res.headers), body: Buffer.concat(chunks) }));
      // A connection closed before the answer is whole ends in 'error' (ECONNRESET, "aborted"), not 'end'.
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The clients send JSON text; bytes are taken too. */
function requestBody(body: RequestInit['body']): string | Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError(`teacher transport: cannot send a ${Object.prototype.toString.call(body)} body`);
}

function responseHeaders(raw: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (Array.isArray(value)) value.forEach((item) => headers.append(name, item));
    else if (value !== undefined) headers.set(name, value);
  }
  return headers;
}

function urlOf(input: string | URL | Request): string {
  if (typeof input === 'string') return input;
  if (input instanceof URL) return input.href;
  throw new TypeError('teacher transport: the clients pass URLs, not Request objects');
}

function stripQuery(url: string): string {
  const index = url.indexOf('?');
  return index === -1 ? url : url.slice(0, index);
}

export function redact(text: string, secret: string | undefined): string {
  return secret ? text.split(secret).join('***') : text;
}
