import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatasetError } from '../../../datasets/errors.ts';
import { RecipeError } from '../../../src/recipe/errors.ts';
import type { EvalResponse } from '../../../src/eval/suite.ts';
import { customSuite, loadCustomSuite, parseCustomSuiteSpec } from '../../../src/eval/suites/custom.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custom-suite-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

const jsonl = (records: unknown[]) => records.map((record) => JSON.stringify(record)).join('\n') + '\n';

const CAPITALS = [
  { country: 'Italy', capital: 'Rome' },
  { country: 'Kenya', capital: 'Nairobi' },
  { country: 'Peru', capital: 'Lima' },
];

const CAPITALS_YAML = `name: capitals
data: capitals.jsonl
prompt: "Q: What is the capital of {{country}}?\\nA:"
target_field: capital
fewshot:
  examples:
    - { country: France, capital: Paris }
    - { country: Japan, capital: Tokyo }
generate:
  max_tokens: 16
  stop: ["\\n"]
`;

const generated = (text: string): EvalResponse => ({ kind: 'generate', text });
const loglikelihood = (logprobs: number[]): EvalResponse => ({ kind: 'loglikelihood', logprobs, greedy: logprobs.map(() => false) });

describe('loadCustomSuite: generate', () => {
  it('writes the shots, a blank line between, then the prompt', async () => {
    await write('capitals.jsonl', jsonl(CAPITALS));
    const suite = await loadCustomSuite(await write('capitals.yaml', CAPITALS_YAML), { seed: 5 });
    expect(suite.documents[0]).toEqual({
      id: 'capitals.jsonl:1',
      request: {
        kind: 'generate',
        prompt: 'Q: What is the capital of France?\nA: Paris\n\nQ: What is the capital of Japan?\nA: Tokyo\n\nQ: What is the capital of Italy?\nA:',
        stop: ['\n'],
        maxTokens: 16,
      },
      target: 'Rome',
      doc: { country: 'Italy', capital: 'Rome' },
    });
    const { documents, score, ...rest } = suite;
    expect([documents.length, typeof score]).toEqual([3, 'function']);
    expect(rest).toEqual({ name: 'capitals', version: '1', promptStyle: '2-shot', shots: 2, seed: 5, primaryMetric: 'exact_match' });
  });

  it('reads only the first limit records', async () => {
    await write('capitals.jsonl', `${jsonl(CAPITALS.slice(0, 2))}{not json\n`);
    const suite = await loadCustomSuite(await write('capitals.yaml', CAPITALS_YAML), { seed: 0, limit: 2 });
    expect(suite.documents.map((d) => d.id)).toEqual(['capitals.jsonl:1', 'capitals.jsonl:2']);
  });

  it('names the record that lacks a field the prompt uses', async () => {
    await write('capitals.jsonl', jsonl([CAPITALS[0], { nation: 'Chile', capital: 'Santiago' }]));
    const loading = loadCustomSuite(await write('capitals.yaml', CAPITALS_YAML), { seed: 0 });
    await expect(loading).rejects.toThrow(DatasetError);
    await expect(loading).rejects.toThrow('capitals.jsonl:2: missing field "country" (has ["nation", "capital"])');
  });
});

describe('customSuite: generate scoring', () => {
  const records = [{ id: 'q.jsonl:1', value: { q: 'How many legs has a spider?', a: '8' } }];
  const spec = (generate: string) =>
    parseCustomSuiteSpec(`name: q\ndata: q.jsonl\nprompt: "{{q}}"\ntarget_field: a\ngenerate:\n${generate}`, 'q.yaml');

  it('exact: equal after trimming, case-sensitive unless asked', () => {
    const suite = customSuite(spec('  match: exact\n'), { records, seed: 0 });
    const score = (text: string) => suite.score(suite.documents[0], generated(text));
    expect(score(' 8 \n')).toEqual({ metrics: { exact_match: 1 }, extracted: { answer: ' 8 \n' } });
    expect(score(' 8.').metrics).toEqual({ exact_match: 0 });
    expect(suite.documents[0].request).toEqual({ kind: 'generate', prompt: 'How many legs has a spider?', stop: [], maxTokens: 256 });
  });

  it('extract: the regex group of the first match is the answer', () => {
    const suite = customSuite(spec('  extract: "answer is (\\\\w+)"\n  match: exact\n  ignore_case: true\n'), {
      records: [{ id: 'q.jsonl:1', value: { q: 'Colour of the sky?', a: 'Blue' } }],
      seed: 0,
    });
    const score = (text: string) => suite.score(suite.documents[0], generated(text));
    expect(score('I think the answer is BLUE, or the answer is grey')).toEqual({ metrics: { exact_match: 1 }, extracted: { answer: 'BLUE' } });
    expect(score('Blue')).toEqual({ metrics: { exact_match: 0 }, extracted: { answer: null } });
  });

  it('contains: the target anywhere in the output', () => {
    const suite = customSuite(spec('  match: contains\n'), { records, seed: 0 });
    expect(suite.primaryMetric).toBe('contains');
    expect(suite.score(suite.documents[0], generated('Spiders have 8 legs.')).metrics).toEqual({ contains: 1 });
    expect(suite.score(suite.documents[0], generated('Six.')).metrics).toEqual({ contains: 0 });
  });

  it('numeric: the last number, within the tolerance', () => {
    const numeric = (tolerance: string) =>
      customSuite(spec(`  match: numeric\n${tolerance}`), { records: [{ id: 'q.jsonl:1', value: { q: 'Pi?', a: '3.14' } }], seed: 0 });
    const score = (tolerance: string, text: string) => {
      const suite = numeric(tolerance);
      return suite.score(suite.documents[0], generated(text)).metrics.numeric_match;
    };
    expect(score('', 'Between 3 and 4: 3.14.')).toBe(1);
    expect(score('', '3.1416')).toBe(0);
    expect(score('  tolerance: 0.01\n', 'about 3.1416')).toBe(1);
    expect(score('  tolerance: 0.01\n', 'about 3.1416, or 1,000 in total')).toBe(0);
    expect(score('', 'no number')).toBe(0);
  });

  it('numeric: refuses a target that is no number', () => {
    const bad = [{ id: 'q.jsonl:7', value: { q: '?', a: 'eight' } }];
    expect(() => customSuite(spec('  match: numeric\n'), { records: bad, seed: 0 })).toThrow('q.jsonl:7: field "a" must be a number for match: numeric, got "eight"');
  });
});

describe('customSuite: choices', () => {
  it('scores each choice (from a CSV cell holding a JSON list) by log-likelihood, the target by index', async () => {
    await write('quiz.csv', 'question,options,label\n"Largest planet?","[""Mars"", ""Jupiter"", ""Venus""]",1\n"Red planet?","[""Mars"", ""Earth""]",0\n');
    const yaml = `name: planets
data: quiz.csv
prompt: "Question: {{question}}\\nAnswer:"
target_field: label
fewshot:
  examples:
    - { question: "Closest star?", options: [Sun, Sirius], label: 0 }
choices:
  field: options
  target_is: index
`;
    const suite = await loadCustomSuite(await write('planets.yaml', yaml), { seed: 0 });
    expect(suite.documents[0]).toEqual({
      id: 'quiz.csv:2',
      request: {
        kind: 'loglikelihood',
        context: 'Question: Closest star?\nAnswer: Sun\n\nQuestion: Largest planet?\nAnswer:',
        continuations: [' Mars', ' Jupiter', ' Venus'],
      },
      target: 'Jupiter',
      doc: { question: 'Largest planet?', options: '["Mars", "Jupiter", "Venus"]', label: '1' },
    });
    expect(suite.primaryMetric).toBe('acc');
    expect(suite.score(suite.documents[0], loglikelihood([-3, -0.5, -2]))).toEqual({ metrics: { acc: 1 }, extracted: { choice: 'Jupiter' } });
    expect(suite.score(suite.documents[1], loglikelihood([-3, -0.5]))).toEqual({ metrics: { acc: 0 }, extracted: { choice: 'Earth' } });
    expect(() => suite.score(suite.documents[1], loglikelihood([-3, -0.5, -1]))).toThrow(/expected 2 log-probabilities/);
  });

  it('takes a fixed list, the target as text, and the prefix given', () => {
    const spec = parseCustomSuiteSpec(
      'name: sentiment\ndata: s.jsonl\nprompt: "{{text}} Sentiment:"\ntarget_field: label\nchoices:\n  list: [positive, negative]\n  prefix: "  "\n',
      's.yaml',
    );
    const suite = customSuite(spec, { records: [{ id: 's.jsonl:1', value: { text: 'Great film.', label: 'positive' } }], seed: 0 });
    expect(suite.documents[0].request).toEqual({ kind: 'loglikelihood', context: 'Great film. Sentiment:', continuations: ['  positive', '  negative'] });
    expect(suite.score(suite.documents[0], loglikelihood([-1, -1]))).toEqual({ metrics: { acc: 1 }, extracted: { choice: 'positive' } });
    const bad = [{ id: 's.jsonl:4', value: { text: 'Meh.', label: 'neutral' } }];
    expect(() => customSuite(spec, { records: bad, seed: 0 })).toThrow('s.jsonl:4: field "label" must be one of ["positive","negative"], got "neutral"');
  });
});

describe('parseCustomSuiteSpec', () => {
  it('accepts the example in the module comment, defaults as written there', async () => {
    const source = await readFile(join(import.meta.dirname, '../../../src/eval/suites/custom.ts'), 'utf8');
    const example = source.split('```yaml\n')[1].split(' * ```')[0].replaceAll(/^ \* ?/gm, '');
    expect(parseCustomSuiteSpec(example, 'custom.ts')).toEqual({
      name: 'capitals',
      version: '1',
      data: 'capitals.jsonl',
      prompt: 'Q: What is the capital of {{country}}?\nA:',
      target_field: 'capital',
      fewshot: {
        examples: [
          { country: 'France', capital: 'Paris' },
          { country: 'Japan', capital: 'Tokyo' },
        ],
        separator: '\n\n',
        target_template: ' {{capital}}',
      },
      generate: { max_tokens: 256, stop: ['\n'], extract: 'is (\\w+)', match: 'exact', ignore_case: false },
    });
  });
});

describe('parseCustomSuiteSpec: errors point at file:line:col', () => {
  /** The message of the error parsing `text` throws. */
  function errorOf(text: string): string {
    try {
      parseCustomSuiteSpec(text, 'suite.yaml');
    } catch (error) {
      expect(error).toBeInstanceOf(RecipeError);
      return (error as RecipeError).message;
    }
    throw new Error('expected an error');
  }
  const base = 'name: t\ndata: t.jsonl\nprompt: "{{x}}"\ntarget_field: y\n';

  it('an unknown key, at the key, with the key it probably meant', () => {
    expect(errorOf(`${base}generate:\n  max_tokens: 8\n  stops: ["\\n"]\n`)).toBe('suite.yaml:7:3: generate.stops: unknown key (did you mean stop?)');
    expect(errorOf(`${base}scoring: x\ngenerate: {}\n`)).toMatch(/^suite\.yaml:5:1: scoring: unknown key \(allowed: name, version, data, prompt/);
  });

  it('a wrong type or value, at the value', () => {
    expect(errorOf(`${base}generate:\n  max_tokens: many\n`)).toBe('suite.yaml:6:15: generate.max_tokens: expected a number, got "many"');
    expect(errorOf(`${base}generate:\n  match: fuzzy\n`)).toBe('suite.yaml:6:10: generate.match: expected one of exact | contains | numeric, got "fuzzy"');
  });

  it('a missing key, at the enclosing mapping', () => {
    expect(errorOf('name: t\ndata: t.jsonl\nprompt: x\ngenerate: {}\n')).toBe('suite.yaml:1:1: target_field: required, expected a string');
  });

  it('no way or two ways of scoring', () => {
    expect(errorOf(base)).toBe('suite.yaml:1:1: needs a choices or a generate section (how to score)');
    expect(errorOf(`${base}choices:\n  list: [a, b]\ngenerate: {}\n`)).toBe('suite.yaml:7:11: generate: choose one of choices and generate');
    expect(errorOf(`${base}choices:\n  prefix: " "\n`)).toMatch(/^suite\.yaml:6:3: choices: needs exactly one of field/);
  });

  it('a regex that does not compile or has other than one group', () => {
    expect(errorOf(`${base}generate:\n  extract: "(unclosed"\n`)).toBe('suite.yaml:6:12: generate.extract: not a valid regular expression: "(unclosed"');
    expect(errorOf(`${base}generate:\n  extract: "(a)(b)"\n`)).toBe('suite.yaml:6:12: generate.extract: expected a regular expression with one group (…), got 2');
    expect(errorOf(`${base}generate:\n  tolerance: 0.1\n`)).toBe('suite.yaml:6:14: generate.tolerance: applies only with match: numeric');
  });

  it('a few-shot example without a field the prompt or target uses, at the example', () => {
    const text = `${base}fewshot:\n  examples:\n    - { x: 1, y: 2 }\n    - { x: 3 }\ngenerate: {}\n`;
    expect(errorOf(text)).toBe('suite.yaml:8:7: fewshot.examples[1]: missing field "y" (has ["x"])');
  });

  it('a data file of unknown format, at data', () => {
    expect(errorOf('name: t\ndata: t.txt\nprompt: x\ntarget_field: y\ngenerate: {}\n')).toMatch(/^suite\.yaml:2:7: data: cannot tell the format from extension "\.txt"/);
  });

  it('YAML syntax and an empty file', () => {
    expect(errorOf('name: [t\n')).toMatch(/^suite\.yaml:\d+:\d+: invalid YAML/);
    expect(errorOf('')).toBe('suite.yaml:1:1: the custom suite file is empty');
  });

  it('several problems, the first in file order in the message', () => {
    const error = (() => {
      try {
        parseCustomSuiteSpec('name: 3\ndata: t.jsonl\nprompt: x\ntarget_field: y\ngenerate:\n  max_tokens: 0\n', 'suite.yaml');
      } catch (caught) {
        return caught as RecipeError;
      }
    })();
    expect(error?.issues.map((issue) => `${issue.line}:${issue.column} ${issue.keyPath}`)).toEqual(['1:7 name', '6:15 generate.max_tokens']);
    expect(error?.message).toMatch(/^suite\.yaml:1:7: name: expected a string, got 3 \(and 1 more problem\)$/);
  });
});

describe('loadCustomSuite: files', () => {
  it('points at data when the data file is missing', async () => {
    const path = await write('s.yaml', 'name: t\ndata: missing.jsonl\nprompt: x\ntarget_field: y\ngenerate: {}\n');
    await expect(loadCustomSuite(path, { seed: 0 })).rejects.toThrow(/s\.yaml:2:7: data: no such file: .*missing\.jsonl/);
  });

  it('names a suite file that is not there', async () => {
    await expect(loadCustomSuite(join(dir, 'nope.yaml'), { seed: 0 })).rejects.toThrow(/nope\.yaml: cannot read the custom suite: no such file/);
  });
});
