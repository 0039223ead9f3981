import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileChatTemplate } from '../../../datasets/chat-template.ts';
import { readGsm8k, type Gsm8kProblem } from '../../../datasets/gsm8k.ts';
import type { EvalDocument, EvalRequest, Suite } from '../../../src/eval/suite.ts';
import { GSM8K_METRICS, gsm8kSuite } from '../../../src/eval/suites/gsm8k.ts';
import type { Gsm8kSuiteOptions } from '../../../src/eval/suites/gsm8k.ts';
import { SlmError } from '../../../src/util/errors.ts';

function problem(line: number, question: string, solution: string, answer: string, answerText = `${solution}\n#### ${answer}`): Gsm8kProblem {
  return { question, solution, answer, answerText, source: `test.jsonl:${line}` };
}

const TOM = problem(1, 'Tom has 3 apples and buys 4 more. How many apples does he have?', 'Tom has 3+4=<<3+4=7>>7 apples.', '7');
const ANA = problem(2, 'Ana reads 12 pages a day for 3 days. How many pages?', 'She reads 12*3=<<12*3=36>>36 pages.', '36');
const ICE = problem(3, 'It is 2 degrees and gets 9 degrees colder. What is the temperature?', 'It is 2-9=<<2-9=-7>>-7 degrees.', '-7');

/** `n` train problems with distinct questions. */
function pool(n: number): Gsm8kProblem[] {
  return Array.from({ length: n }, (_, i) => problem(100 + i, `Pool question ${i}?`, `Work ${i}.`, String(i)));
}

function prompt(request: EvalRequest): string {
  if (request.kind !== 'generate') throw new Error('expected a generate request');
  return request.prompt;
}

function suite(options: Partial<Gsm8kSuiteOptions> & Pick<Gsm8kSuiteOptions, 'style'>): Suite {
  return gsm8kSuite({ data: [TOM, ANA, ICE], seed: 1, ...options });
}

describe('gsm8kSuite: 5-shot (harness gsm8k)', () => {
  it('writes shots as Question/Answer with the answer as the data has it (commas kept), then the question', () => {
    const other = problem(8, 'Sam had 1,502 coins and lost 2. How many are left?', 'He has 1502-2=<<1502-2=1500>>1500 coins.', '1500', 'He has 1502-2=<<1502-2=1500>>1500 coins.\n#### 1,500');
    const { documents } = suite({ data: [TOM], style: '5-shot', shots: 1, fewshotPool: [other] });
    expect(documents).toEqual([
      {
        id: 'test.jsonl:1',
        request: {
          kind: 'generate',
          prompt:
            'Question: Sam had 1,502 coins and lost 2. How many are left?\n' +
            'Answer: He has 1502-2=<<1502-2=1500>>1500 coins.\n#### 1,500\n\n' +
            'Question: Tom has 3 apples and buys 4 more. How many apples does he have?\nAnswer:',
          stop: ['Question:', '</s>', '<|im_end|>'],
          maxTokens: 256,
        },
        target: 'Tom has 3+4=<<3+4=7>>7 apples.\n#### 7',
        doc: { question: TOM.question, answer: TOM.answerText },
      },
    ]);
  });

  it('gives the harness\'s very prompts for its default seed (CPython\'s random.sample per document)', async () => {
    const fixture = JSON.parse(readFileSync(new URL('../../fixtures/gsm8k-harness/prompts.json', import.meta.url), 'utf8'));
    const dir = mkdtempSync(join(tmpdir(), 'slm-gsm8k-'));
    const write = (name: string, rows: unknown[]) => (writeFileSync(join(dir, name), rows.map((row) => JSON.stringify(row)).join('\n')), join(dir, name));
    const [data, fewshotPool] = await Promise.all([readGsm8k(write('test.jsonl', fixture.test)), readGsm8k(write('train.jsonl', fixture.train))]);
    const { documents } = gsm8kSuite({ data, fewshotPool, style: '5-shot', seed: 1234 });
    expect(documents.map((d) => prompt(d.request))).toEqual(fixture.prompts);
    expect(fixture.prompts.join('')).toMatch(/#### \d+,000/);
  });

  it('orders two shots as drawn: the prompt is one of the two hand-written orders', () => {
    const shotA = problem(20, 'A?', 'a.', '1');
    const shotB = problem(21, 'B?', 'b.', '2');
    const seen = new Set<string>();
    for (let seed = 0; seed < 20; seed++) {
      const [document] = gsm8kSuite({ data: [ICE], fewshotPool: [shotA, shotB], style: '5-shot', shots: 2, seed }).documents;
      seen.add(prompt(document.request));
    }
    const question = `Question: ${ICE.question}\nAnswer:`;
    const a = 'Question: A?\nAnswer: a.\n#### 1\n\n';
    const b = 'Question: B?\nAnswer: b.\n#### 2\n\n';
    expect([...seen].sort()).toEqual([a + b + question, b + a + question]);
  });

  it('draws the same shots for the same seed, other shots for another, and keeps them under limit', () => {
    const data = pool(30);
    const base = { data, fewshotPool: data, style: '5-shot' as const };
    const prompts = (s: Suite) => s.documents.map((d) => prompt(d.request));
    const first = prompts(gsm8kSuite({ ...base, seed: 42 }));
    expect(prompts(gsm8kSuite({ ...base, seed: 42 }))).toEqual(first);
    expect(prompts(gsm8kSuite({ ...base, seed: 43 }))).not.toEqual(first);
    expect(prompts(gsm8kSuite({ ...base, seed: 42, limit: 4 }))).toEqual(first.slice(0, 4));
  });

  it('never shows a problem its own question when the pool is the evaluated split, and shows five distinct shots', () => {
    // The pool is the evaluated data itself, the case where the harness must exclude the document.
    const data = pool(8);
    const { documents, shots } = gsm8kSuite({ data, fewshotPool: data, poolIsEvaluatedSplit: true, style: '5-shot', seed: 3 });
    expect(shots).toBe(5);
    for (const [i, document] of documents.entries()) {
      const questions = [...prompt(document.request).matchAll(/Question: (.*)\n/g)].map((m) => m[1]);
      expect(questions).toHaveLength(6);
      expect(new Set(questions).size).toBe(6);
      expect(questions.slice(0, 5)).not.toContain(data[i].question);
      expect(questions[5]).toBe(data[i].question);
    }
  });

  it('scores both harness filters against the full answer', () => {
    const s = suite({ style: '5-shot', fewshotPool: pool(5) });
    const tom = s.documents[0];
    const score = (text: string) => s.score(tom, { kind: 'generate', text });
    expect(score(' Tom has 3+4=7 apples.\n#### 7')).toEqual({
      metrics: { [GSM8K_METRICS.strict]: 1, [GSM8K_METRICS.flexible]: 1 },
      extracted: { 'strict-match': '7', 'flexible-extract': '7' },
    });
    expect(score(' He ends with 7.').metrics).toEqual({ [GSM8K_METRICS.strict]: 0, [GSM8K_METRICS.flexible]: 1 });
    expect(score(' #### 7 apples and 12 pears').metrics).toEqual({ [GSM8K_METRICS.strict]: 1, [GSM8K_METRICS.flexible]: 0 });
    expect(score(' #### 7.00').metrics).toEqual({ [GSM8K_METRICS.strict]: 0, [GSM8K_METRICS.flexible]: 0 });
    expect(score(' no idea')).toEqual({
      metrics: { [GSM8K_METRICS.strict]: 0, [GSM8K_METRICS.flexible]: 0 },
      extracted: { 'strict-match': null, 'flexible-extract': null },
    });
    expect(() => s.score(tom, { kind: 'loglikelihood', logprobs: [], greedy: [] })).toThrow(/test\.jsonl:1/);
  });

  it('describes itself', () => {
    const s = suite({ style: '5-shot', fewshotPool: pool(5), seed: 9, maxTokens: 64 });
    expect({ ...s, documents: undefined, score: undefined }).toEqual({
      name: 'gsm8k',
      version: '2',
      promptStyle: '5-shot',
      shots: 5,
      seed: 9,
      available: 3,
      documents: undefined,
      score: undefined,
      primaryMetric: 'exact_match,flexible-extract',
    });
    expect(s.documents.map((d: EvalDocument) => [d.id, d.groups, d.request.kind === 'generate' && d.request.maxTokens])).toEqual([
      ['test.jsonl:1', undefined, 64],
      ['test.jsonl:2', undefined, 64],
      ['test.jsonl:3', undefined, 64],
    ]);
  });
});

describe('gsm8kSuite: cot-8-shot (harness gsm8k_cot)', () => {
  it('writes the first exemplars as Q/A, then the question', () => {
    const { documents, shots, promptStyle } = suite({ data: [ICE], style: 'cot-8-shot', shots: 2 });
    expect([shots, promptStyle]).toEqual([2, 'cot-8-shot']);
    expect(documents[0]).toEqual({
      id: 'test.jsonl:3',
      request: {
        kind: 'generate',
        prompt:
          'Q: There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?\n' +
          'A: There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6.\n\n' +
          'Q: If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?\n' +
          'A: There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.\n\n' +
          'Q: It is 2 degrees and gets 9 degrees colder. What is the temperature?\nA:',
        stop: ['Q:', '</s>', '<|im_end|>'],
        maxTokens: 256,
      },
      target: '-7',
      doc: { question: ICE.question, answer: ICE.answerText },
    });
  });

  it('uses all eight exemplars by default, ending with Olivia', () => {
    const { documents, shots } = suite({ style: 'cot-8-shot' });
    const text = prompt(documents[1].request);
    expect(shots).toBe(8);
    expect(text.match(/^Q: /gm)).toHaveLength(9);
    expect(text.match(/The answer is \d+\.\n\n/g)).toHaveLength(8);
    expect(text).toContain('A: Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8.\n\nQ: Ana reads');
  });

  it('takes the strict answer from "The answer is N."', () => {
    const s = suite({ style: 'cot-8-shot' });
    const score = (text: string) => s.score(s.documents[2], { kind: 'generate', text }).metrics;
    expect(score(' It is 2 - 9 = -7. The answer is -7.')).toEqual({ [GSM8K_METRICS.strict]: 1, [GSM8K_METRICS.flexible]: 1 });
    expect(score(' 2 - 9 = -7.\n#### -7')).toEqual({ [GSM8K_METRICS.strict]: 0, [GSM8K_METRICS.flexible]: 1 });
    // The harness's pattern needs a character after the number: at the very end it reads -7 as -.
    expect(score(' The answer is -7')).toEqual({ [GSM8K_METRICS.strict]: 0, [GSM8K_METRICS.flexible]: 1 });
  });

  it('refuses more shots than exemplars', () => {
    expect(() => suite({ style: 'cot-8-shot', shots: 9 })).toThrow(/8 exemplars, got shots 9/);
  });
});

describe('gsm8kSuite: zero-shot', () => {
  it('is the question alone', () => {
    const { documents, shots } = suite({ style: 'zero-shot' });
    expect(shots).toBe(0);
    expect(documents[1].request).toEqual({
      kind: 'generate',
      prompt: 'Question: Ana reads 12 pages a day for 3 days. How many pages?\nAnswer:',
      stop: ['Question:', '</s>', '<|im_end|>'],
      maxTokens: 256,
    });
  });

  it('refuses shots', () => {
    expect(() => suite({ style: 'zero-shot', shots: 2, fewshotPool: pool(5) })).toThrow(SlmError);
  });
});

describe('gsm8kSuite: chat', () => {
  const CHATML = String.raw`{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`;
  const chatTemplate = compileChatTemplate(CHATML);

  it('sends the question as the user turn, zero-shot by default', () => {
    const { documents, shots } = suite({ data: [ANA], style: 'chat', chatTemplate });
    expect(shots).toBe(0);
    expect(prompt(documents[0].request)).toBe(
      '<|im_start|>user\nAna reads 12 pages a day for 3 days. How many pages?<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('puts shots in earlier user and assistant turns', () => {
    const { documents } = suite({ data: [ANA], style: 'chat', chatTemplate, shots: 1, fewshotPool: [TOM] });
    expect(prompt(documents[0].request)).toBe(
      '<|im_start|>user\nTom has 3 apples and buys 4 more. How many apples does he have?<|im_end|>\n' +
        '<|im_start|>assistant\nTom has 3+4=<<3+4=7>>7 apples.\n#### 7<|im_end|>\n' +
        '<|im_start|>user\nAna reads 12 pages a day for 3 days. How many pages?<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('needs a chat template', () => {
    expect(() => suite({ style: 'chat' })).toThrow(/chatTemplate/);
  });
});

describe('gsm8kSuite: options', () => {
  it('names what is missing or wrong', () => {
    expect(() => suite({ style: '5-shot' })).toThrow(/gsm8k: style "5-shot" with 5 shots needs fewshotPool/);
    expect(() => suite({ style: '5-shot', fewshotPool: pool(4) })).toThrow(/fewshotPool has 4 problems, fewer than the 5/);
    expect(() => suite({ style: '5-shot', fewshotPool: pool(5), shots: -1 })).toThrow(/shots must be a non-negative integer/);
    expect(() => suite({ style: 'zero-shot', limit: 1.5 })).toThrow(/limit must be a non-negative integer/);
  });

  it('takes the first limit problems', () => {
    expect(suite({ style: 'zero-shot', limit: 2 }).documents.map((d) => d.id)).toEqual(['test.jsonl:1', 'test.jsonl:2']);
  });
});
