import { createServer } from 'node:http';
import { text } from 'node:stream/consumers';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback server speaking both teacher wire formats (Ollama native, OpenAI-compatible) with response
 * shapes from ollama/ollama api/types.go and openai-node's chat/completions types. Faults are scripted
 * per path and consumed in order; once a path's script is empty it answers normally.
 */
export type Fault =
  | { kind: 'drop' } // headers and half a body, then the socket is destroyed
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'malformed' };

export interface RecordedRequest {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export interface FakeServerOptions {
  ollamaVersion?: string;
  /** Whether /v1/completions echoes prompt logprobs (vLLM) or answers 404. */
  scoring?: boolean;
  /** Delay before every normal answer, so concurrent requests overlap. */
  delayMs?: number;
  /** Counts requests in flight; share one between servers to see the total. */
  gauge?: InFlightGauge;
  /** The generated answer for a request body (default ANSWER_TOKENS); its text is the tokens joined. */
  answer?: (body: Record<string, unknown>) => AnswerToken[];
  /** Whether answers carry logprobs when asked [true]; false: a server that has none. */
  logprobs?: boolean;
  /** `system_fingerprint` of chat answers; none when absent. */
  fingerprint?: string;
  /** Extra fields of every /v1/models entry (vLLM's root, llama-server's meta). */
  modelDetails?: Record<string, unknown>;
}

/** The prompt of a generation request: `prompt`, or the last message's content. */
export function promptOf(body: Record<string, unknown>): string {
  return typeof body.prompt === 'string' ? body.prompt : (body.messages as { content: string }[]).at(-1)!.content;
}

export interface AnswerToken {
  token: string;
  logprob: number;
  top: { token: string; logprob: number }[];
}

export interface InFlightGauge {
  now: number;
  max: number;
}

/** The generated answer: two tokens with fixed alternatives. */
export const ANSWER_TOKENS: AnswerToken[] = [
  { token: 'Hi', logprob: -0.25, top: [{ token: 'Hi', logprob: -0.25 }, { token: 'Hello', logprob: -1.75 }, { token: 'Hey', logprob: -3 }] },
  { token: '!', logprob: -0.5, top: [{ token: '!', logprob: -0.5 }, { token: '.', logprob: -1.5 }, { token: ',', logprob: -4 }] },
];

export class FakeTeacherServer {
  readonly requests: RecordedRequest[] = [];
  readonly gauge: InFlightGauge;
  private readonly scripts = new Map<string, Fault[]>();
  private readonly server: Server;

  private constructor(readonly options: FakeServerOptions) {
    this.gauge = options.gauge ?? { now: 0, max: 0 };
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  static async start(options: FakeServerOptions = {}): Promise<FakeTeacherServer> {
    const fake = new FakeTeacherServer(options);
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  script(path: string, ...faults: Fault[]): void {
    this.scripts.set(path, [...(this.scripts.get(path) ?? []), ...faults]);
  }

  hits(path: string): RecordedRequest[] {
    return this.requests.filter((request) => request.path === path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const raw = await text(req);
    const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    this.requests.push({ path, headers: req.headers, body });
    this.gauge.now++;
    this.gauge.max = Math.max(this.gauge.max, this.gauge.now);
    try {
      const fault = this.scripts.get(path)?.shift();
      if (fault && (await this.applyFault(fault, res))) return;
      if (this.options.delayMs) await sleep(this.options.delayMs);
      const answer = this.answer(path, body);
      if (!answer) return sendJson(res, 404, { error: `no route ${path}` });
      sendJson(res, 200, answer);
    } finally {
      this.gauge.now--;
    }
  }

  private ollamaCommon(body: Record<string, unknown>) {
    const tokens = this.answerTokens(body);
    return {
      model: body.model, created_at: '2025-01-01T00:00:00Z', done: true, done_reason: 'stop',
      total_duration: 1000, load_duration: 10, prompt_eval_count: 3, prompt_eval_duration: 100, eval_count: 2, eval_duration: 200,
      ...(body.logprobs && (this.options.logprobs ?? true) ? { logprobs: wireTokens(tokens, Number(body.top_logprobs ?? 0)) } : {}),
    };
  }

  private answerTokens(body: Record<string, unknown>): AnswerToken[] {
    return this.options.answer?.(body) ?? ANSWER_TOKENS;
  }

  /** True when the fault fully answered the request. */
  private async applyFault(fault: Fault, res: ServerResponse): Promise<boolean> {
    switch (fault.kind) {
      case 'drop':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '400' });
        res.write('{"model":"tiny","mess');
        await sleep(5);
        res.socket?.destroy();
        return true;
      case 'status':
        res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
        res.end(fault.body ?? JSON.stringify({ error: `scripted ${fault.status}` }));
        return true;
      case 'slow':
        await sleep(fault.delayMs);
        return false;
      case 'malformed':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"model": "tiny", "message": ');
        return true;
    }
  }

  private answer(path: string, body: Record<string, unknown>): unknown {
    switch (path) {
      case '/api/version':
        return { version: this.options.ollamaVersion ?? '0.12.11' };
      case '/api/show':
        return {
          modelfile: '# Modelfile', parameters: '', template: '{{ .Prompt }}',
          details: { format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '135M', quantization_level: 'Q8_0' },
          model_info: { 'general.architecture': 'llama', 'llama.context_length': 2048 },
          capabilities: ['completion'], modified_at: '2025-01-01T00:00:00Z',
        };
      case '/api/tags':
        return { models: [{ name: 'tiny:latest', model: 'tiny:latest', digest: 'sha256-0123abcd', size: 1, modified_at: '2025-01-01T00:00:00Z', details: {} }] };
      case '/api/chat':
        return { ...this.ollamaCommon(body), message: { role: 'assistant', content: answerText(this.answerTokens(body)) } };
      case '/api/generate':
        return { ...this.ollamaCommon(body), response: answerText(this.answerTokens(body)) };
      case '/v1/chat/completions':
        return { ...openaiChat(body, this.answerTokens(body), this.options.logprobs ?? true), ...(this.options.fingerprint && { system_fingerprint: this.options.fingerprint }) };
      case '/v1/completions':
        if (body.echo) return this.options.scoring ? openaiEcho(body) : undefined;
        return openaiCompletion(body, this.answerTokens(body));
      case '/v1/models':
        return { object: 'list', data: [{ id: 'tiny', object: 'model', created: Date.now(), owned_by: 'fake', ...this.options.modelDetails }] };
      default:
        return undefined;
    }
  }
}

function answerText(tokens: AnswerToken[]): string {
  return tokens.map((entry) => entry.token).join('');
}

function wireTokens(tokens: AnswerToken[], k: number) {
  const bytes = (token: string) => [...Buffer.from(token, 'utf8')];
  return tokens.map((entry) => ({
    token: entry.token,
    logprob: entry.logprob,
    bytes: bytes(entry.token),
    top_logprobs: entry.top.slice(0, k).map((top) => ({ ...top, bytes: bytes(top.token) })),
  }));
}

function openaiChat(body: Record<string, unknown>, tokens: AnswerToken[], hasLogprobs: boolean) {
  const content = body.logprobs && hasLogprobs ? wireTokens(tokens, Number(body.top_logprobs ?? 0)) : null;
  return {
    id: 'chatcmpl-1', object: 'chat.completion', created: 1735689600, model: body.model,
    choices: [{ index: 0, message: { role: 'assistant', content: answerText(tokens), refusal: null }, logprobs: { content, refusal: null }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  };
}

/** Legacy completions without echo: the answer's text, no logprobs. */
function openaiCompletion(body: Record<string, unknown>, tokens: AnswerToken[]) {
  return {
    id: 'cmpl-2', object: 'text_completion', created: 1735689600, model: body.model,
    choices: [{ index: 0, text: answerText(tokens), finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: 3, completion_tokens: tokens.length, total_tokens: 3 + tokens.length },
  };
}

/** Legacy completions with echo: the prompt split into words, word i scored -(i+1), alternatives below it. */
function openaiEcho(body: Record<string, unknown>) {
  const prompt = String(body.prompt);
  const k = Number(body.logprobs ?? 0);
  const tokens = prompt.match(/\s*\S+/g) ?? [];
  const offsets = tokens.map((_, i) => tokens.slice(0, i).join('').length);
  const tokenLogprobs = tokens.map((_, i) => (i === 0 ? null : -(i + 1)));
  const top = tokens.map((token, i) => (i === 0 ? null : Object.fromEntries(
    [[token, -(i + 1)], ...Array.from({ length: k - 1 }, (_, j) => [` alt${j}`, -(i + 2 + j)])].slice(0, k),
  )));
  return {
    id: 'cmpl-1', object: 'text_completion', created: 1735689600, model: body.model,
    choices: [{ index: 0, text: prompt, finish_reason: 'length', logprobs: { tokens, token_logprobs: tokenLogprobs, top_logprobs: top, text_offset: offsets } }],
    usage: { prompt_tokens: tokens.length, completion_tokens: 0, total_tokens: tokens.length },
  };
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A clock whose sleeps are recorded and end on the next turn of the event loop instead of waiting; `now`
 * jumps to the end of each sleep, so concurrent sleepers share the time they wait instead of adding it up.
 * Its timers (request timeouts) fire only when the test calls `fireTimers`, however slow the machine.
 */
export function fakeClock(startMs = Date.UTC(2025, 0, 1)) {
  const sleeps: number[] = [];
  const timers = new Set<() => void>();
  let now = startMs;
  return {
    sleeps,
    now: () => now,
    setTimer: (_ms: number, fire: () => void) => {
      timers.add(fire);
      return () => timers.delete(fire);
    },
    /** Fires every pending timer; returns how many. */
    fireTimers: () => {
      const pending = [...timers];
      timers.clear();
      pending.forEach((fire) => fire());
      return pending.length;
    },
    sleep: async (ms: number) => {
      sleeps.push(ms);
      const until = now + ms;
      await new Promise((resolve) => setImmediate(resolve));
      now = Math.max(now, until);
    },
  };
}

/** Resolves once `condition` holds, checking every few milliseconds (the test's own timeout ends a hang). */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(2);
}
