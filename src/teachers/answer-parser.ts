import { Worker } from 'node:worker_threads';
import { parentOf, type AnswerPath, type PackedLogprobs, type ParsedAnswer } from './answer-packing.mjs';
import type { TokenLogprob, TopLogprob } from './teacher.ts';

const WORKER = new URL('./answer-parse-worker.mjs', import.meta.url);

/** A parsed answer whose logprob list, if any, is in place as TokenLogprob[]; or what made it unusable. */
export type LabeledAnswer = { json: unknown } | { problem: string };

/**
 * Parses a labeled answer on the parse worker and puts its generated tokens back at `logprobsAt` as
 * TokenLogprob[]. Parsing a 128-token answer with 20 alternatives takes about 2 ms; on the main thread it
 * would hold up every other answer's I/O, which is what limits labeling against a fast server.
 */
export async function parseLabeledAnswer(body: Uint8Array, logprobsAt: AnswerPath): Promise<LabeledAnswer> {
  const result = await parseWorker.parse(body, logprobsAt);
  if ('problem' in result || !result.packed) return result;
  // The worker packed the list, so the path leads to where it stood.
  parentOf(result.json, logprobsAt)![logprobsAt.at(-1)!] = unpackLogprobs(result.packed);
  return { json: result.json };
}

/** Each generated token with its alternatives; entries of one (token, bytes) pair share their bytes array. */
export function unpackLogprobs({ tokens, bytes, entries, logprobs, topCounts }: PackedLogprobs): TokenLogprob[] {
  const result = new Array<TokenLogprob>(topCounts.length);
  let next = 0;
  for (let t = 0; t < topCounts.length; t++) {
    const chosen = entries[next];
    const logprob = logprobs[next++];
    const top = new Array<TopLogprob>(topCounts[t]);
    for (let j = 0; j < top.length; j++, next++) {
      const index = entries[next];
      top[j] = bytes[index] ? { token: tokens[index], bytes: bytes[index]!, logprob: logprobs[next] } : { token: tokens[index], logprob: logprobs[next] };
    }
    result[t] = bytes[chosen] ? { token: tokens[chosen], bytes: bytes[chosen]!, logprob, top } : { token: tokens[chosen], logprob, top };
  }
  return result;
}

interface Waiter {
  resolve(result: ParsedAnswer): void;
  reject(error: Error): void;
}

/**
 * One worker thread for every teacher in the process. It keeps the process alive only while a parse is
 * pending; if it dies, the pending parses fail and the next one starts a new worker.
 */
class ParseWorker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Waiter>();
  private nextId = 0;

  parse(body: Uint8Array, logprobsAt: AnswerPath): Promise<ParsedAnswer> {
    const worker = this.started();
    if (this.pending.size === 0) worker.ref();
    const id = this.nextId++;
    const buffer = ownBuffer(body);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, body: buffer, logprobsAt }, [buffer]);
    });
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER, { execArgv: [] });
    worker.unref();
    worker.on('message', ({ id, ...result }: ParsedAnswer & { id: number }) => {
      const waiter = this.pending.get(id);
      this.pending.delete(id);
      if (this.pending.size === 0) worker.unref();
      waiter?.resolve(result);
    });
    worker.on('error', (error) => this.failAll(worker, error));
    worker.on('exit', (code) => this.failAll(worker, new Error(`the answer-parse worker exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }

  private failAll(worker: Worker, error: Error): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}

const parseWorker = new ParseWorker();

/**
 * The bytes in an ArrayBuffer of their own, which can be transferred: a small Buffer is a view of a shared
 * pool, which must be copied out (Buffer's own slice() would not copy).
 */
function ownBuffer(body: Uint8Array): ArrayBuffer {
  const whole = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer;
  return whole ? (body.buffer as ArrayBuffer) : new Uint8Array(body).buffer;
}
