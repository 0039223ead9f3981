import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { text } from 'node:stream/consumers';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { OllamaTeacher } from '../teachers/ollama.ts';
import { OpenAITeacher } from '../teachers/openai.ts';
import { sendWhole } from '../teachers/http-transport.ts';
import { RequestPool } from '../teachers/request-pool.ts';
import type { GenerateRequest, Sample, Teacher, WireLogprob } from '../teachers/teacher.ts';

export type LabelingProvider = 'openai' | 'ollama';

export interface LabelingBenchOptions {
  provider: LabelingProvider;
  requests: number;
  /** Requests in flight at once (the request pool's limit). */
  concurrency: number;
  /** How long the server holds every request before answering. */
  delayMs: number;
  tokensPerResponse: number;
  /** Alternatives per generated token, 0..20. */
  topLogprobs: number;
}

/** The answer the bench labels: GSM8K-length, with the most alternatives servers return (20). */
export const BENCH_LABELING_ANSWER = { tokensPerResponse: 128, topLogprobs: 20 };

export interface LabelingBenchResult {
  provider: LabelingProvider;
  requests: number;
  concurrency: number;
  delayMs: number;
  tokensPerResponse: number;
  topLogprobs: number;
  seconds: number;
  requestsPerSecond: number;
  /**
   * What latency and concurrency allow: concurrency / the mean round trip of a lone request (the labeling
   * request, sent one at a time over node:http against the same server in the same run, its answer read
   * whole and not parsed). A client whose own work cost nothing under concurrency would reach it.
   */
  idealRequestsPerSecond: number;
  /** The mean of those lone round trips. */
  loneRoundTripMs: number;
  /** requestsPerSecond / idealRequestsPerSecond: the share left after the client's own overhead. */
  efficiency: number;
  /**
   * concurrency / the mean time the server held a timed request before it began to answer (the delay, its
   * timer's lateness, reading the request): the ideal of a loopback that cost nothing, where answers of
   * hundreds of kilobytes crossed between processes in no time.
   */
  serverIdealRequestsPerSecond: number;
  /** requestsPerSecond / serverIdealRequestsPerSecond. */
  efficiencyToServer: number;
  /** concurrency / delay: the ideal of a server whose timers were exact and that did no work. */
  nominalIdealRequestsPerSecond: number;
  /**
   * The peer: the same requests sent by bare `fetch` calls (`concurrency` loops, each answer parsed with
   * JSON.parse on the main thread and nothing more), against the same server in the same run: what the
   * plainest client reaches.
   */
  bareFetchRequestsPerSecond: number;
  /** requestsPerSecond / bareFetchRequestsPerSecond: the share left after the teacher's own work. */
  efficiencyToBareFetch: number;
  /** Labeled tokens parsed from the answers, per second. */
  tokensPerSecond: number;
  /** What the server saw of the timed requests, to confirm the pool sent each once and kept to its limit. */
  served: ServedCounts;
}

export interface ServedCounts {
  requests: number;
  maxInFlight: number;
  /** Summed over the requests: ms from arrival until the server began to send the answer. */
  heldMs: number;
}

export interface LabelingServer {
  url: string;
  /** Counts since the previous call (or the start). */
  takeCounts(): ServedCounts;
  close(): Promise<void>;
}

export interface LabelingServerOptions {
  delayMs: number;
  tokensPerResponse: number;
}

const MODEL = 'bench-teacher';
const OPENAI_CHAT = '/v1/chat/completions';
const OLLAMA_CHAT = '/api/chat';
/**
 * A fresh teacher's first four waves take about 1.4x the steady time (compiling the client, the transport
 * and the parse worker), and the pace still creeps up for some 30 waves (91, 63, 63, 69, 64, 65, 65, 63, 60,
 * 61 ms a wave of 8 at 50 ms delay, in groups of four waves).
 */
const WARMUP_WAVES = 20;
/** Lone requests timed for the ideal's round trip (40 at 50 ms: about two seconds). */
const LONE_REQUESTS = 40;

/**
 * Requests per second of a real teacher (client, transport, request pool, parsing) against a loopback
 * server that answers every request after `delayMs`, in a process of its own as a real server is. The ideal
 * is what a lone request's measured round trip allows at the given concurrency, so the efficiency is the
 * share left after the client's own overhead (parsing the answers included). Untimed warm-up requests come
 * first (compilation, connections), as the training bench warms up a step.
 */
export async function benchLabeling(options: LabelingBenchOptions): Promise<LabelingBenchResult> {
  const { provider, requests, concurrency, delayMs, tokensPerResponse, topLogprobs } = options;
  if (!(delayMs > 0)) throw new RangeError(`benchLabeling: \`delayMs\` must be positive, got ${delayMs}`);
  const server = await startRemoteLabelingServer({ delayMs, tokensPerResponse });
  try {
    const teacher = buildTeacher(provider, server.url, concurrency, delayMs);
    const batch = (count: number) => Array.from({ length: count }, (_, i) => labelingRequest(i, tokensPerResponse, topLogprobs));
    await teacher.generate(batch(WARMUP_WAVES * concurrency));
    await server.takeCounts();
    const started = performance.now();
    const samples = await teacher.generate(batch(requests));
    const seconds = (performance.now() - started) / 1000;
    const tokens = countCheckedTokens(samples, tokensPerResponse, topLogprobs);
    const requestsPerSecond = requests / seconds;
    const served = await server.takeCounts();
    const serverIdealRequestsPerSecond = concurrency / (served.heldMs / served.requests / 1000);
    const bareFetchRequestsPerSecond = await bareFetchRate(server.url, provider, requests, concurrency, topLogprobs);
    const loneRoundTripMs = await meanLoneRoundTripMs(server.url, provider, topLogprobs);
    const idealRequestsPerSecond = concurrency / (loneRoundTripMs / 1000);
    return {
      provider, requests, concurrency, delayMs, tokensPerResponse, topLogprobs, seconds,
      requestsPerSecond,
      idealRequestsPerSecond,
      loneRoundTripMs,
      efficiency: requestsPerSecond / idealRequestsPerSecond,
      serverIdealRequestsPerSecond,
      efficiencyToServer: requestsPerSecond / serverIdealRequestsPerSecond,
      nominalIdealRequestsPerSecond: concurrency / (delayMs / 1000),
      bareFetchRequestsPerSecond,
      efficiencyToBareFetch: requestsPerSecond / bareFetchRequestsPerSecond,
      tokensPerSecond: tokens / seconds,
      served,
    };
  } finally {
    await server.close();
  }
}

function buildTeacher(provider: LabelingProvider, url: string, concurrency: number, delayMs: number): Teacher {
  // No retries: a failed request must fail the bench, not hide inside its timing.
  const pool = new RequestPool({ endpoints: [provider === 'openai' ? `${url}/v1` : url], concurrency, timeoutMs: 10_000 + 10 * delayMs, maxRetries: 0 });
  return provider === 'openai' ? new OpenAITeacher({ model: MODEL, pool, score: false }) : new OllamaTeacher({ model: MODEL, pool });
}

/** Requests per second of `concurrency` loops of bare fetch + JSON.parse, asking for the same answers. */
async function bareFetchRate(url: string, provider: LabelingProvider, requests: number, concurrency: number, topLogprobs: number): Promise<number> {
  const { endpoint, body } = bareRequest(url, provider, topLogprobs);
  let sent = 0;
  const loop = async () => {
    while (sent < requests) {
      sent++;
      const response = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      if (!response.ok) throw new Error(`benchLabeling: the bare fetch peer got HTTP ${response.status}`);
      JSON.parse(await response.text());
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  return requests / ((performance.now() - started) / 1000);
}

/** Mean round trip of LONE_REQUESTS requests sent one at a time (after as many untimed), read whole, not parsed. */
async function meanLoneRoundTripMs(url: string, provider: LabelingProvider, topLogprobs: number): Promise<number> {
  const { endpoint, body } = bareRequest(url, provider, topLogprobs);
  const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body };
  let totalMs = 0;
  for (let i = 0; i < 2 * LONE_REQUESTS; i++) {
    const started = performance.now();
    const { status } = await sendWhole(endpoint, init);
    if (status !== 200) throw new Error(`benchLabeling: a lone request got HTTP ${status}`);
    if (i >= LONE_REQUESTS) totalMs += performance.now() - started;
  }
  return totalMs / LONE_REQUESTS;
}

/** The labeling request as the peers send it: the provider's chat route, the same alternatives. */
function bareRequest(url: string, provider: LabelingProvider, topLogprobs: number): { endpoint: string; body: string } {
  return {
    endpoint: `${url}${provider === 'openai' ? OPENAI_CHAT : OLLAMA_CHAT}`,
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Question' }], logprobs: topLogprobs > 0, top_logprobs: topLogprobs }),
  };
}

/** Chat messages, so the Ollama teacher uses /api/chat like the OpenAI one uses chat completions. */
function labelingRequest(index: number, maxTokens: number, topLogprobs: number): GenerateRequest {
  const content = `Question ${index}: a farmer has ${index + 3} sheep and buys 7 more. How many sheep does the farmer have now?`;
  return { messages: [{ role: 'user', content }], system: 'Think step by step.', maxTokens, temperature: 1, topLogprobs, seed: index };
}

/** The labeled tokens of all samples; throws when an answer did not parse into the shape the server sent. */
function countCheckedTokens(samples: Sample[], tokensPerResponse: number, topLogprobs: number): number {
  samples.forEach((sample, i) => {
    const short = sample.tokens.find((token) => token.top.length !== topLogprobs);
    if (sample.tokens.length !== tokensPerResponse || short) {
      throw new Error(
        `benchLabeling: sample ${i} parsed into ${sample.tokens.length} tokens` +
          `${short ? ` (one with ${short.top.length} alternatives)` : ''}, expected ${tokensPerResponse} with ${topLogprobs} alternatives each`,
      );
    }
  });
  return samples.length * tokensPerResponse;
}

/** startLabelingServer in a child process (labeling-server-process.ts), its counts fetched over IPC. */
async function startRemoteLabelingServer(options: LabelingServerOptions): Promise<{ url: string; takeCounts(): Promise<ServedCounts>; close(): Promise<void> }> {
  const child = fork(new URL('./labeling-server-process.ts', import.meta.url), [JSON.stringify(options)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const [{ url }] = (await once(child, 'message')) as [{ url: string }];
  return {
    url,
    takeCounts: async () => {
      child.send({ take: true });
      const [{ counts }] = (await once(child, 'message')) as [{ counts: ServedCounts }];
      return counts;
    },
    close: async () => {
      child.send({ close: true });
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

/**
 * A loopback server (127.0.0.1, a free port) answering OpenAI chat completions and Ollama /api/chat with
 * `tokensPerResponse` tokens and the requested number of alternatives, after `delayMs` at least. It runs
 * in the benchmarking process, so each answer body is built once per alternative count and reused: the
 * server's own CPU time should stay small next to the client's.
 */
export async function startLabelingServer(options: LabelingServerOptions): Promise<LabelingServer> {
  let counts: ServedCounts = { requests: 0, maxInFlight: 0, heldMs: 0 };
  const bodies = new Map<string, Buffer>();
  let inFlight = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const arrived = performance.now();
    counts.requests++;
    counts.maxInFlight = Math.max(counts.maxInFlight, ++inFlight);
    try {
      const held = sleepAtLeast(options.delayMs);
      const request = JSON.parse((await text(req)) || '{}') as { logprobs?: boolean; top_logprobs?: number };
      await held;
      const path = (req.url ?? '/').split('?')[0];
      const k = request.logprobs ? (request.top_logprobs ?? 0) : undefined;
      const key = `${path} ${k}`;
      if (!bodies.has(key)) {
        const body = answerBody(path, options.tokensPerResponse, k);
        if (body === undefined) return send(res, 404, JSON.stringify({ error: `no route ${path}` }));
        bodies.set(key, Buffer.from(body));
      }
      counts.heldMs += performance.now() - arrived;
      send(res, 200, bodies.get(key)!);
    } finally {
      inFlight--;
    }
  };
  const server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    takeCounts: () => {
      const taken = counts;
      counts = { requests: 0, maxInFlight: inFlight, heldMs: 0 };
      return taken;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The answer for a route (shapes of openai-node's ChatCompletion and ollama's ChatResponse); `k` undefined: no logprobs asked. */
function answerBody(path: string, tokenCount: number, k: number | undefined): string | undefined {
  const logprobs = k === undefined ? undefined : wireLogprobs(tokenCount, k);
  const text = Array.from({ length: tokenCount }, (_, i) => pieceAt(i)).join('');
  if (path === OPENAI_CHAT) {
    return JSON.stringify({
      id: 'chatcmpl-bench', object: 'chat.completion', created: 1735689600, model: MODEL,
      choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: { content: logprobs ?? null, refusal: null }, finish_reason: 'length' }],
      usage: { prompt_tokens: 40, completion_tokens: tokenCount, total_tokens: 40 + tokenCount },
    });
  }
  if (path === OLLAMA_CHAT) {
    return JSON.stringify({
      model: MODEL, created_at: '2025-01-01T00:00:00Z', message: { role: 'assistant', content: text }, done: true, done_reason: 'length',
      total_duration: 2_000_000, load_duration: 10_000, prompt_eval_count: 40, prompt_eval_duration: 100_000, eval_count: tokenCount, eval_duration: 1_800_000,
      ...(logprobs ? { logprobs } : {}),
    });
  }
  return undefined;
}

/** Word pieces of an arithmetic answer, so token strings, bytes and body size look like a real one. */
const PIECES = [' The', ' farmer', ' had', ' 1', '2', ' sheep', ' and', ' bought', ' 7', ' more', ',', ' so', ' now', ' he', ' has',
  ' 19', '.', ' We', ' add', ' the', ' two', ' numbers', ':', ' +', ' =', ' answer', ' is', '\n', '####', ' total', ' step'];

function pieceAt(i: number): string {
  return PIECES[i % PIECES.length];
}

/** Token i is the most likely of its k alternatives, whose log-probabilities fall off geometrically. */
function wireLogprobs(tokenCount: number, k: number): WireLogprob[] {
  const entry = (token: string, logprob: number) => ({ token, logprob, bytes: [...Buffer.from(token, 'utf8')] });
  return Array.from({ length: tokenCount }, (_, i) => {
    const logprob = (j: number) => Math.log(0.6 / 2 ** j) - (i % 5) * 0.0371;
    const top = Array.from({ length: k }, (_, j) => entry(pieceAt(i + j), logprob(j)));
    return { ...entry(pieceAt(i), logprob(0)), top_logprobs: top };
  });
}

/** A timer may fire a millisecond early; the delay is a floor the ideal rate relies on. */
async function sleepAtLeast(ms: number): Promise<void> {
  const until = performance.now() + ms;
  for (let left = ms; left > 0; left = until - performance.now()) await sleep(Math.ceil(left));
}

function send(res: ServerResponse, status: number, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body);
}

