import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { text } from 'node:stream/consumers';
import { afterEach, describe, expect, it } from 'vitest';
import { TeacherHttpError, TeacherNetworkError, TeacherResponseError, TeacherTimeoutError } from '../../src/teachers/errors.ts';
import { createTransport } from '../../src/teachers/http-transport.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  }));
});

async function serve(handler: Handler): Promise<string> {
  const server = createServer(async (req, res) => handler(req, res, await text(req)));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const answerJson = (res: ServerResponse, value: unknown) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
};

const open = () => new AbortController().signal;

describe('createTransport', () => {
  it('sends method, headers and body, reports the answer received before returning it, and hands the client the parsed JSON', async () => {
    const answer = { text: 'é'.repeat(100_000), n: 3 };
    let seen: { method?: string; auth?: string; body?: string } = {};
    const url = await serve((req, res, body) => {
      seen = { method: req.method, auth: req.headers.authorization, body };
      answerJson(res, answer);
    });
    const events: string[] = [];
    const transport = createTransport({ signal: open(), received: () => events.push('received') });
    const response = await transport(`${url}/v1/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer k' }, body: '{"a":1}' });
    events.push('returned');
    expect(events).toEqual(['received', 'returned']);
    expect(seen).toEqual({ method: 'POST', auth: 'Bearer k', body: '{"a":1}' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual(answer);
  });

  it('puts the generated tokens at `logprobsAt` as TokenLogprobs, parsed off the main thread', async () => {
    const wire = [{ token: 'Hi', logprob: -0.5, bytes: [72, 105], top_logprobs: [{ token: 'Hi', logprob: -0.5, bytes: [72, 105] }, { token: 'Yo', logprob: -2 }] }];
    const url = await serve((_req, res) => answerJson(res, { message: { content: 'Hi' }, logprobs: wire }));
    const transport = createTransport({ signal: open(), logprobsAt: ['logprobs'] });
    const response = await transport(`${url}/api/chat`, { method: 'POST', body: '{}' });
    expect(await response.json()).toEqual({
      message: { content: 'Hi' },
      logprobs: [{ token: 'Hi', bytes: [72, 105], logprob: -0.5, top: [{ token: 'Hi', bytes: [72, 105], logprob: -0.5 }, { token: 'Yo', logprob: -2 }] }],
    });
  });

  it('turns a non-2xx answer into an error naming the URL with a redacted excerpt and the Retry-After', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(429, { 'retry-after': '7' });
      res.end(`bad key sk-secret ${'x'.repeat(500)}`);
    });
    const transport = createTransport({ signal: open(), secret: 'sk-secret' });
    const error = await transport(`${url}/v1/chat/completions?key=1`, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TeacherHttpError);
    expect(error).toMatchObject({ status: 429, retryable: true, retryAfterMs: 7000 });
    expect((error as Error).message).toContain(`${url}/v1/chat/completions answered HTTP 429: bad key ***`);
    expect((error as Error).message).not.toContain('sk-secret');
    expect((error as Error).message).not.toContain('?key=1');
    expect((error as Error).message).not.toContain('x'.repeat(201));
  });

  it('reports a body that is not JSON, and a connection dropped halfway, naming the URL', async () => {
    const url = await serve((req, res) => {
      if (req.url === '/garbled') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"model": "tiny", "message": ');
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '400' });
      res.write('{"model":"tiny","mess');
      setTimeout(() => res.socket?.destroy(), 5);
    });
    const transport = createTransport({ signal: open() });
    const garbled = await transport(`${url}/garbled`, {}).catch((e: unknown) => e);
    expect(garbled).toBeInstanceOf(TeacherResponseError);
    expect((garbled as Error).message).toMatch(new RegExp(`${url}/garbled sent an unusable response: malformed JSON`));
    const dropped = await transport(`${url}/dropped`, {}).catch((e: unknown) => e);
    expect(dropped).toBeInstanceOf(TeacherNetworkError);
    expect((dropped as Error).message).toContain(`${url}/dropped could not be reached or dropped the connection`);
  });

  it('gives up when the attempt is aborted, with the abort reason (the pool\'s timeout)', async () => {
    const url = await serve(() => {}); // never answers
    const controller = new AbortController();
    const transport = createTransport({ signal: controller.signal });
    const pending = transport(`${url}/slow`, {}).catch((e: unknown) => e);
    const reason = new TeacherTimeoutError(url, 10);
    setTimeout(() => controller.abort(reason), 10);
    expect(await pending).toBe(reason);
  });

  it('returns a null-body answer as it is', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(204);
      res.end();
    });
    const response = await createTransport({ signal: open() })(`${url}/empty`, { method: 'DELETE' });
    expect(response.status).toBe(204);
    expect(response.body).toBeNull();
  });
});
