/** A scripted arithmetic teacher for the loopback server: known answers, some wrong, one token per character. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AnswerToken } from '../teachers/fake-teacher-server.ts';

/** Prompts "a+b=" whose correct answer is "a+b is c. #### c"; the server gets every third one wrong. */
export function sums(count: number) {
  return Array.from({ length: count }, (_, i) => ({ question: `${i}+${2 * i}=`, answer: `#### ${3 * i}` }));
}

/** One token per character (so a byte-level student can take every one), with two alternatives each. */
export function sumAnswer(body: Record<string, unknown>): AnswerToken[] {
  // OpenAI chat sends messages; Ollama's /api/generate sends the prompt.
  const question = typeof body.prompt === 'string' ? body.prompt : (body.messages as { content: string }[]).at(-1)!.content;
  const [a, b] = question.replace('=', '').split('+').map(Number);
  const wrong = a % 3 === 2;
  const text = `${a}+${b} is ${a + b + (wrong ? 1 : 0)}. #### ${a + b + (wrong ? 1 : 0)}`;
  return [...text].map((char, i) => ({
    token: char,
    logprob: -0.1 - i / 1000,
    top: [
      { token: char, logprob: -0.1 - i / 1000 },
      { token: char === 'x' ? 'y' : 'x', logprob: -3 },
      { token: '?', logprob: -4 },
    ],
  }));
}

export function writeSums(dir: string, count = 12): string {
  const file = join(dir, 'sums.jsonl');
  writeFileSync(file, sums(count).map((row) => JSON.stringify(row)).join('\n') + '\n');
  return file;
}

export function generateRecipeYaml(url: string, extra = ''): string {
  return `
name: gen
backend: wasm
output_dir: runs
teacher:
  provider: openai
  model: tiny
  endpoints: [${url}/v1]
  concurrency: 2
  max_retries: 2
generate:
  prompts: sums.jsonl
  prompt_field: question
  reference_field: answer
  k: 3
  temperature: 0
  max_tokens: 64
  filters:
    answer: gsm8k
${extra}
student:
  type: scratch
  architecture: { hidden_size: 16, intermediate_size: 32, num_layers: 1, num_heads: 2 }
data:
  seq_len: 64
train:
  max_steps: 1
`;
}

