import { describe, expect, it } from 'vitest';
import { benchLabeling, startLabelingServer } from '../../src/bench/labeling.ts';

const small = { requests: 24, concurrency: 4, delayMs: 20, tokensPerResponse: 16, topLogprobs: 5 };

describe('benchLabeling', () => {
  for (const provider of ['openai', 'ollama'] as const) {
    it(`sends each ${provider} request once, within the concurrency, and never beats the server's ideal`, async () => {
      const result = await benchLabeling({ provider, ...small });
      expect(result.served.requests).toBe(small.requests);
      expect(result.served.maxInFlight).toBeLessThanOrEqual(small.concurrency);
      expect(result.served.maxInFlight).toBeGreaterThan(1);
      expect(result.nominalIdealRequestsPerSecond).toBeCloseTo(4 / 0.02, 9);
      // The server held each request at least the delay, so neither measured ideal exceeds the nominal one.
      expect(result.served.heldMs).toBeGreaterThanOrEqual(small.requests * small.delayMs);
      expect(result.serverIdealRequestsPerSecond).toBeCloseTo(small.concurrency / (result.served.heldMs / small.requests / 1000), 9);
      expect(result.loneRoundTripMs).toBeGreaterThanOrEqual(small.delayMs);
      expect(result.idealRequestsPerSecond).toBeCloseTo(small.concurrency / (result.loneRoundTripMs / 1000), 9);
      expect(result.requestsPerSecond).toBeLessThanOrEqual(result.serverIdealRequestsPerSecond * 1.05);
      expect(result.requestsPerSecond).toBeCloseTo(small.requests / result.seconds, 9);
      expect(result.efficiency).toBeCloseTo(result.requestsPerSecond / result.idealRequestsPerSecond, 9);
      expect(result.efficiencyToServer).toBeCloseTo(result.requestsPerSecond / result.serverIdealRequestsPerSecond, 9);
      // The bare fetch peer ran the same requests against the same server: it cannot beat the server's ideal either.
      expect(result.bareFetchRequestsPerSecond).toBeLessThanOrEqual(result.serverIdealRequestsPerSecond * 1.05);
      expect(result.efficiencyToBareFetch).toBeCloseTo(result.requestsPerSecond / result.bareFetchRequestsPerSecond, 9);
      // Every answer parsed into tokensPerResponse tokens (benchLabeling throws otherwise), counted here.
      expect(result.tokensPerSecond * result.seconds).toBeCloseTo(small.requests * small.tokensPerResponse, 6);
    });
  }

  it('rejects a delay that leaves no ideal rate', async () => {
    await expect(benchLabeling({ provider: 'openai', ...small, delayMs: 0 })).rejects.toThrow(/`delayMs` must be positive, got 0/);
  });
});

describe('startLabelingServer', () => {
  it('answers with the requested alternatives per token, the chosen token first, and 404 elsewhere', async () => {
    const server = await startLabelingServer({ delayMs: 1, tokensPerResponse: 3 });
    try {
      const post = (path: string, body: unknown) =>
        fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const openai = await (await post('/v1/chat/completions', { logprobs: true, top_logprobs: 4 })).json();
      const content = openai.choices[0].logprobs.content;
      expect(content).toHaveLength(3);
      expect(openai.choices[0].message.content).toBe(content.map((entry: { token: string }) => entry.token).join(''));
      for (const entry of content) {
        expect(entry.top_logprobs).toHaveLength(4);
        expect(entry.top_logprobs[0]).toEqual({ token: entry.token, logprob: entry.logprob, bytes: [...Buffer.from(entry.token)] });
        const logprobs = entry.top_logprobs.map((top: { logprob: number }) => top.logprob);
        expect(logprobs).toEqual([...logprobs].sort((a, b) => b - a));
        expect(new Set(entry.top_logprobs.map((top: { token: string }) => top.token)).size).toBe(4);
      }
      const ollama = await (await post('/api/chat', { logprobs: true, top_logprobs: 2 })).json();
      expect(ollama.logprobs.map((entry: { top_logprobs: unknown[] }) => entry.top_logprobs.length)).toEqual([2, 2, 2]);
      const plain = await (await post('/api/chat', {})).json();
      expect(plain.logprobs).toBeUndefined();
      expect((await post('/api/generate', {})).status).toBe(404);
      const counts = server.takeCounts();
      expect(counts).toMatchObject({ requests: 4, maxInFlight: 1 });
      expect(counts.heldMs).toBeGreaterThanOrEqual(3); // three answers held 1 ms each; the 404 is not timed
      expect(server.takeCounts()).toEqual({ requests: 0, maxInFlight: 0, heldMs: 0 });
    } finally {
      await server.close();
    }
  });
});
