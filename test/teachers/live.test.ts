import { describe, expect, it } from 'vitest';
import { OllamaTeacher } from '../../src/teachers/ollama.ts';
import { OpenAITeacher } from '../../src/teachers/openai.ts';
import { RequestPool } from '../../src/teachers/request-pool.ts';
import type { GenerateRequest } from '../../src/teachers/teacher.ts';

/** Against real servers, only when the environment names them; the model comes from *_MODEL. */
const ollamaHost = process.env.OLLAMA_HOST;
const openaiBase = process.env.OPENAI_BASE_URL;
const request: GenerateRequest = { prompt: 'Say hi.', maxTokens: 8, temperature: 0, topLogprobs: 3, seed: 1 };

function livePool(endpoint: string) {
  return new RequestPool({ endpoints: [endpoint], concurrency: 1, timeoutMs: 60_000, maxRetries: 1 });
}

describe('live teachers', () => {
  it.skipIf(!ollamaHost)(`generates with logprobs on the Ollama server at OLLAMA_HOST${ollamaHost ? '' : ' (skipped: OLLAMA_HOST not set)'}`, async () => {
    const host = /^https?:\/\//.test(ollamaHost!) ? ollamaHost! : `http://${ollamaHost}`;
    const teacher = new OllamaTeacher({ model: process.env.OLLAMA_MODEL ?? 'smollm2:135m', pool: livePool(host) });
    const [sample] = await teacher.generate([request]);
    expect(sample.tokens.length).toBeGreaterThan(0);
    expect(sample.tokens[0].top.length).toBeLessThanOrEqual(3);
  }, 120_000);

  it.skipIf(!openaiBase)(`generates with logprobs on the server at OPENAI_BASE_URL${openaiBase ? '' : ' (skipped: OPENAI_BASE_URL not set)'}`, async () => {
    const teacher = new OpenAITeacher({
      model: process.env.OPENAI_MODEL ?? 'gpt-4o-mini',
      pool: livePool(openaiBase!),
      apiKeyEnv: process.env.OPENAI_API_KEY ? 'OPENAI_API_KEY' : undefined,
      score: false,
    });
    const [sample] = await teacher.generate([request]);
    expect(sample.tokens.length).toBeGreaterThan(0);
  }, 120_000);
});
