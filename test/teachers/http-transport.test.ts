import { describe, expect, it } from 'vitest';
import { TeacherHttpError } from '../../src/teachers/errors.ts';
import { createTransport } from '../../src/teachers/http-transport.ts';

describe('createTransport', () => {
  it('reports the answer received once its body is read, and hands the same bytes to the client', async () => {
    const body = JSON.stringify({ text: 'é'.repeat(100_000) });
    const events: string[] = [];
    const fetch: typeof globalThis.fetch = async () => {
      events.push('fetched');
      return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const transport = createTransport({ signal: new AbortController().signal, fetch, received: () => events.push('received') });
    const response = await transport('http://teacher/v1/chat/completions', { method: 'POST' });
    events.push('returned');
    expect(events).toEqual(['fetched', 'received', 'returned']);
    expect(await response.json()).toEqual(JSON.parse(body));
    expect(response.headers.get('content-type')).toBe('application/json');
  });

  it('turns a non-2xx answer into an error naming the URL with a redacted excerpt', async () => {
    const fetch: typeof globalThis.fetch = async () => new Response(`bad key sk-secret ${'x'.repeat(500)}`, { status: 401 });
    const transport = createTransport({ signal: new AbortController().signal, fetch, secret: 'sk-secret' });
    const error = await transport('http://teacher/v1/chat/completions?key=1', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TeacherHttpError);
    expect((error as Error).message).toContain('http://teacher/v1/chat/completions');
    expect((error as Error).message).toContain('bad key ***');
    expect((error as Error).message).not.toContain('sk-secret');
    expect((error as Error).message).not.toContain('x'.repeat(201));
  });
});
