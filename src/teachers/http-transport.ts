import { TeacherHttpError, TeacherNetworkError, TeacherResponseError } from './errors.ts';
import { parseRetryAfter } from './retry-policy.ts';

export interface TransportOptions {
  /** Aborts the request (the pool's per-attempt timeout). */
  signal: AbortSignal;
  /** Removed from any text that ends up in an error message. */
  secret?: string;
  nowMs?: () => number;
  /** The real fetch, replaceable in tests. */
  fetch?: typeof fetch;
  /** Called once the whole body has been read (the request pool's `Attempt.received`). */
  received?: () => void;
}

const EXCERPT_CHARS = 200;

/**
 * A `fetch` to hand to the provider clients (ollama, openai). It reads the whole body itself, so a dropped
 * connection and a non-2xx status surface here as TeacherErrors that name the URL, the same for every
 * client, before the client's own error handling sees anything. It does not parse the body: a labeled
 * answer runs to hundreds of kilobytes, and the client parses it anyway (see reportMalformedJson). Once the
 * body is in, it reports `received` and hands the body over only after the event loop's pending I/O: when
 * answers arrive together, each one's slot goes to the next request before any of them is parsed.
 */
export function createTransport(options: TransportOptions): typeof fetch {
  const baseFetch = options.fetch ?? fetch;
  const nowMs = options.nowMs ?? Date.now;
  return async (input, init) => {
    const url = urlOf(input);
    const signal = init?.signal ? AbortSignal.any([init.signal, options.signal]) : options.signal;
    let response: Response;
    let body: ArrayBuffer;
    try {
      response = await baseFetch(input, { ...init, signal });
      body = await response.arrayBuffer();
    } catch (error) {
      if (options.signal.aborted) throw options.signal.reason ?? error;
      throw new TeacherNetworkError(url, error);
    }
    options.received?.();
    await new Promise((resolve) => setImmediate(resolve));
    if (!response.ok) {
      const excerpt = redact(new TextDecoder().decode(body.slice(0, 4 * EXCERPT_CHARS)).slice(0, EXCERPT_CHARS), options.secret);
      throw new TeacherHttpError(url, response.status, excerpt, parseRetryAfter(response.headers.get('retry-after'), nowMs()));
    }
    const nullBody = response.status === 204 || response.status === 205 || response.status === 304;
    return new Response(nullBody ? null : body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

function urlOf(input: string | URL | Request): string {
  if (typeof input === 'string') return stripQuery(input);
  if (input instanceof URL) return stripQuery(input.href);
  return stripQuery(input.url);
}

function stripQuery(url: string): string {
  const index = url.indexOf('?');
  return index === -1 ? url : url.slice(0, index);
}

/**
 * Awaits a client call made through the transport. The clients parse the body themselves and throw a bare
 * SyntaxError when it is not JSON; that becomes the TeacherResponseError (not retried) naming `url`.
 */
export async function reportMalformedJson<T>(url: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    if (error instanceof SyntaxError) throw new TeacherResponseError(url, `malformed JSON (${error.message})`);
    throw error;
  }
}

export function redact(text: string, secret: string | undefined): string {
  return secret ? text.split(secret).join('***') : text;
}
