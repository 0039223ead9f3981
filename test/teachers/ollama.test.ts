import { afterEach, describe, expect, it } from 'vitest';
import { TeacherNetworkError } from '../../src/teachers/errors.ts';
import { OllamaTeacher, compareVersions } from '../../src/teachers/ollama.ts';
import { RequestPool } from '../../src/teachers/request-pool.ts';
import type { RequestPoolOptions } from '../../src/teachers/request-pool.ts';
import type { GenerateRequest } from '../../src/teachers/teacher.ts';
import { ANSWER_TOKENS, FakeTeacherServer, fakeClock, until } from './fake-teacher-server.ts';

const servers: FakeTeacherServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function setup(serverOptions = {}, poolOptions: Partial<RequestPoolOptions> = {}) {
  const server = await FakeTeacherServer.start(serverOptions);
  servers.push(server);
  const clock = fakeClock();
  const pool = new RequestPool({ endpoints: [server.url], concurrency: 2, timeoutMs: 2000, maxRetries: 2, clock, random: () => 0.5, ...poolOptions });
  return { server, clock, pool, teacher: new OllamaTeacher({ model: 'tiny', pool }) };
}

const chat: GenerateRequest = { messages: [{ role: 'user', content: 'Say hi' }], system: 'Be brief', maxTokens: 8, temperature: 0.7, topLogprobs: 2, seed: 3, stop: ['\n'] };

describe('OllamaTeacher', () => {
  it('chats with logprobs and maps every token and its alternatives', async () => {
    const { server, teacher, pool } = await setup();
    const [sample] = await teacher.generate([chat]);
    expect(sample.text).toBe('Hi!');
    expect(sample.finishReason).toBe('stop');
    expect(sample.tokens).toEqual(ANSWER_TOKENS.map((t) => ({
      token: t.token, logprob: t.logprob, bytes: [...Buffer.from(t.token)],
      top: t.top.slice(0, 2).map((top) => ({ ...top, bytes: [...Buffer.from(top.token)] })),
    })));
    const [request] = server.hits('/api/chat');
    expect(request.body).toMatchObject({
      model: 'tiny', stream: false, logprobs: true, top_logprobs: 2,
      messages: [{ role: 'system', content: 'Be brief' }, { role: 'user', content: 'Say hi' }],
      options: { temperature: 0.7, num_predict: 8, seed: 3, stop: ['\n'] },
    });
    expect(pool.stats()).toMatchObject({ requests: 1, tokens: 2 });
  });

  it('uses /api/generate for a bare prompt', async () => {
    const { server, teacher } = await setup();
    const [sample] = await teacher.generate([{ prompt: 'Say hi', system: 'Be brief', maxTokens: 4, temperature: 0, topLogprobs: 0 }]);
    expect(sample.tokens.map((t) => t.top.length)).toEqual([0, 0]);
    expect(server.hits('/api/generate')[0].body).toMatchObject({ prompt: 'Say hi', system: 'Be brief', top_logprobs: 0 });
  });

  it('reports version and digest, and refuses servers older than 0.12.11', async () => {
    const { teacher, server } = await setup();
    expect(await teacher.info()).toEqual({ provider: 'ollama', model: 'tiny', digest: 'sha256-0123abcd', serverVersion: '0.12.11', canScore: false });
    expect(server.hits('/api/show')[0].body).toMatchObject({ model: 'tiny', verbose: true });
    const old = await setup({ ollamaVersion: '0.12.10' });
    await expect(old.teacher.info()).rejects.toThrow(/0\.12\.10 is too old: token logprobs need Ollama 0\.12\.11\+/);
  });

  it('compares versions numerically', () => {
    expect(compareVersions('0.12.11', '0.12.9')).toBe(1);
    expect(compareVersions('0.13.0-rc1', '0.12.11')).toBe(1);
    expect(compareVersions('v0.12.11', '0.12.11')).toBe(0);
  });

  it('retries a dropped connection and a 500, then succeeds', async () => {
    const { server, teacher, pool } = await setup();
    server.script('/api/chat', { kind: 'drop' }, { kind: 'status', status: 500 });
    const [sample] = await teacher.generate([chat]);
    expect(sample.text).toBe('Hi!');
    expect(pool.stats()).toMatchObject({ requests: 3, retries: 2, failures: 0 });
  });

  it('reports a dropped connection as a network error naming the endpoint when retries run out', async () => {
    const { server, teacher } = await setup({}, { maxRetries: 0 });
    server.script('/api/chat', { kind: 'drop' });
    const error = await teacher.generate([chat]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TeacherNetworkError);
    expect((error as Error).message).toContain(`${server.url}/api/chat`);
  });

  it('honours Retry-After on 429', async () => {
    const { server, teacher, clock } = await setup();
    server.script('/api/chat', { kind: 'status', status: 429, headers: { 'retry-after': '1' } });
    await teacher.generate([chat]);
    expect(clock.sleeps).toEqual([1000]);
  });

  it('does not retry a 400', async () => {
    const { server, teacher, pool } = await setup();
    server.script('/api/chat', { kind: 'status', status: 400, body: JSON.stringify({ error: 'top_logprobs must be between 0 and 20' }) });
    await expect(teacher.generate([chat])).rejects.toThrow(/HTTP 400.*top_logprobs must be between 0 and 20/);
    expect(pool.stats()).toMatchObject({ requests: 1, retries: 0, failures: 1 });
  });

  it('times out a slow answer and retries it', async () => {
    const { server, teacher, pool, clock } = await setup();
    server.script('/api/chat', { kind: 'slow', delayMs: 1000 });
    const answer = teacher.generate([chat]);
    await until(() => server.hits('/api/chat').length === 1);
    expect(clock.fireTimers()).toBe(1); // the first attempt's timeout, whatever the machine's speed
    await answer;
    expect(pool.stats()).toMatchObject({ requests: 2, retries: 1, timeouts: 1 });
  });

  it('retries malformed JSON like a 5xx, and names the endpoint once the retries are spent', async () => {
    const { server, teacher, pool } = await setup();
    server.script('/api/chat', { kind: 'malformed' });
    expect((await teacher.generate([chat]))[0].text).toBe('Hi!');
    expect(pool.stats()).toMatchObject({ requests: 2, retries: 1 });
    server.script('/api/chat', ...Array.from({ length: 5 }, () => ({ kind: 'malformed' as const })));
    await expect(teacher.generate([chat])).rejects.toThrow(`teacher endpoint ${server.url}/api/chat sent an unusable response: malformed JSON`);
  });

  it('spreads requests round robin over two servers within the concurrency limit', async () => {
    const gauge = { now: 0, max: 0 };
    const first = await FakeTeacherServer.start({ delayMs: 20, gauge });
    const second = await FakeTeacherServer.start({ delayMs: 20, gauge });
    servers.push(first, second);
    const pool = new RequestPool({ endpoints: [first.url, second.url], concurrency: 3, timeoutMs: 2000, maxRetries: 0 });
    const teacher = new OllamaTeacher({ model: 'tiny', pool });
    const samples = await teacher.generate(Array.from({ length: 8 }, () => chat));
    expect(samples).toHaveLength(8);
    expect([first.requests.length, second.requests.length]).toEqual([4, 4]);
    expect(gauge.max).toBe(3);
  });

  it('rejects an out-of-range topLogprobs before sending anything', async () => {
    const { server, teacher } = await setup();
    await expect(teacher.generate([{ ...chat, topLogprobs: 21 }])).rejects.toThrow(/generate request \[0\]: `topLogprobs` must be an integer in 0\.\.20, got 21/);
    expect(server.requests).toHaveLength(0);
  });
});
