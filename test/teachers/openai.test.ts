import { afterEach, describe, expect, it } from 'vitest';
import { OpenAITeacher } from '../../src/teachers/openai.ts';
import { RequestPool } from '../../src/teachers/request-pool.ts';
import type { GenerateRequest } from '../../src/teachers/teacher.ts';
import { ANSWER_TOKENS, FakeTeacherServer, fakeClock } from './fake-teacher-server.ts';

const KEY = 'sk-test-0123456789secret';
const servers: FakeTeacherServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function setup(serverOptions = {}, maxRetries = 2) {
  const server = await FakeTeacherServer.start(serverOptions);
  servers.push(server);
  const pool = new RequestPool({ endpoints: [`${server.url}/v1`], concurrency: 2, timeoutMs: 2000, maxRetries, clock: fakeClock(), random: () => 0.5 });
  const teacher = new OpenAITeacher({ model: 'tiny', pool, apiKeyEnv: 'TEST_TEACHER_KEY', env: { TEST_TEACHER_KEY: KEY } });
  return { server, pool, teacher };
}

const request: GenerateRequest = { prompt: 'Say hi', system: 'Be brief', maxTokens: 8, temperature: 0.7, topLogprobs: 3, seed: 1 };

describe('OpenAITeacher', () => {
  it('chats with logprobs, sending the key only in the Authorization header', async () => {
    const { server, teacher } = await setup();
    const [sample] = await teacher.generate([request]);
    expect(sample).toMatchObject({ text: 'Hi!', finishReason: 'stop' });
    expect(sample.tokens.map((t) => [t.token, t.logprob, t.top.map((top) => top.logprob)])).toEqual(
      ANSWER_TOKENS.map((t) => [t.token, t.logprob, t.top.map((top) => top.logprob)]),
    );
    const [sent] = server.hits('/v1/chat/completions');
    expect(sent.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(sent.body).toMatchObject({
      model: 'tiny', logprobs: true, top_logprobs: 3, max_tokens: 8, temperature: 0.7, seed: 1,
      messages: [{ role: 'system', content: 'Be brief' }, { role: 'user', content: 'Say hi' }],
    });
    expect(JSON.stringify(sent.body)).not.toContain(KEY);
  });

  it('keeps the key out of error messages, even when the server echoes it', async () => {
    const { server, teacher, pool } = await setup();
    server.script('/v1/chat/completions', { kind: 'status', status: 401, body: JSON.stringify({ error: { message: `Incorrect API key provided: ${KEY}` } }) });
    const error = (await teacher.generate([request]).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/HTTP 401/);
    expect(error.message).toContain('***');
    expect(`${error.message} ${String(error.stack)}`).not.toContain(KEY);
    expect(pool.stats()).toMatchObject({ requests: 1, retries: 0 });
  });

  it('retries 500 and a dropped connection through the openai client, whose own retries are off', async () => {
    const { server, teacher, pool } = await setup();
    server.script('/v1/chat/completions', { kind: 'status', status: 500 }, { kind: 'drop' });
    await teacher.generate([request]);
    expect(server.hits('/v1/chat/completions')).toHaveLength(3);
    expect(pool.stats()).toMatchObject({ requests: 3, retries: 2 });
  });

  it('names the endpoint on malformed JSON once the retries are spent', async () => {
    const { server, teacher } = await setup();
    server.script('/v1/chat/completions', ...Array.from({ length: 5 }, () => ({ kind: 'malformed' as const })));
    await expect(teacher.generate([request])).rejects.toThrow(`${server.url}/v1/chat/completions sent an unusable response: malformed JSON`);
  });

  it('scores given text through legacy completions with echo where the server supports it', async () => {
    const { server, teacher } = await setup({ scoring: true });
    expect(await teacher.info()).toEqual({ provider: 'openai', model: 'tiny', canScore: true });
    const [scored] = await teacher.score(['The cat sat']);
    expect(server.hits('/v1/completions').at(-1)?.body).toMatchObject({ prompt: 'The cat sat', echo: true, logprobs: 5, max_tokens: 0 });
    expect(scored.map((t) => t.token).join('')).toBe('The cat sat');
    expect(scored[0].logprob).toBeNaN();
    expect(scored.slice(1).map((t) => t.logprob)).toEqual([-2, -3]);
    expect(scored[1].top.map((t) => t.logprob)).toEqual([-2, -3, -4, -5, -6]);
  });

  it('says canScore false when the server has no echo scoring, and score() explains', async () => {
    const { teacher } = await setup({ scoring: false });
    expect((await teacher.info()).canScore).toBe(false);
    await expect(teacher.score(['x'])).rejects.toThrow(/cannot score given text/);
  });

  it('names the missing API key variable without guessing its value', () => {
    const pool = new RequestPool({ endpoints: ['http://127.0.0.1:1/v1'], concurrency: 1, timeoutMs: 100, maxRetries: 0 });
    expect(() => new OpenAITeacher({ model: 'tiny', pool, apiKeyEnv: 'NO_SUCH_KEY_VAR', env: {} })).toThrow(/NO_SUCH_KEY_VAR/);
  });
});
