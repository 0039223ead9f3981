import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { minimalParquet } from './minimal-parquet.ts';
import { promptResponseExample, readTextExamples, textExample } from '../../datasets/text-examples.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import type { Tokenizer } from '../../src/tokenizer/tokenizer.ts';

const BOS = 256;
const EOS = 257;
const bytes = (s: string) => [...Buffer.from(s, 'utf8')];
const tokenizer = createByteLevelTokenizer();

function jsonlFile(lines: string[]): string {
  const path = join(mkdtempSync(join(tmpdir(), 'examples-')), 'data.jsonl');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

/** Characters as ids (char codes), except that "ab" is one token, id 1000; no BOS; EOS 999. */
const mergingTokenizer: Tokenizer = {
  vocabSize: 1001,
  bosId: null,
  eosId: 999,
  padId: null,
  encode: (text) => text.split(/(ab)/).flatMap((part) => (part === 'ab' ? [1000] : [...part].map((c) => c.charCodeAt(0)))),
  decode: () => '',
  idOf: () => undefined,
  toJSON: () => '{}',
};

describe('textExample', () => {
  it('is BOS + bytes + EOS with every token but the first a target', () => {
    expect(textExample('Hi!', tokenizer)).toEqual({
      ids: [BOS, 72, 105, 33, EOS],
      lossMask: [0, 1, 1, 1, 1],
    });
  });

  it('without a BOS the first text token is not a target', () => {
    expect(textExample('xy', mergingTokenizer)).toEqual({ ids: [120, 121, 999], lossMask: [0, 1, 1] });
  });
});

describe('promptResponseExample', () => {
  it('targets the response and EOS only', () => {
    expect(promptResponseExample('Q: 2+2?', ' 4', tokenizer)).toEqual({
      ids: [BOS, ...bytes('Q: 2+2?'), ...bytes(' 4'), EOS],
      lossMask: [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1],
    });
  });

  it('counts a token straddling the prompt/response boundary as response', () => {
    // "xa" + "b" tokenizes jointly as [x, ab]: the merged token is the first target.
    expect(promptResponseExample('xa', 'b', mergingTokenizer)).toEqual({
      ids: [120, 1000, 999],
      lossMask: [0, 1, 1],
    });
  });

  it('with an empty response the only target is EOS', () => {
    expect(promptResponseExample('ab', '', tokenizer).lossMask).toEqual([0, 0, 0, 1]);
  });
});

describe('readTextExamples', () => {
  it('picks prompt_response from the first record and keeps line numbers', async () => {
    const path = jsonlFile(['{"prompt":"a","response":"b","id":7}', '', '{"prompt":"c","response":"d"}']);
    const file = await readTextExamples(path, tokenizer);
    expect(file.format).toBe('prompt_response');
    expect(file.examples.map((e) => e.source)).toEqual([`${path}:1`, `${path}:3`]);
    expect(file.examples[1].example).toEqual({ ids: [BOS, 99, 100, EOS], lossMask: [0, 0, 1, 1] });
  });

  it('reads CSV, Parquet and Arrow records as JSONL ones, naming lines and rows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'text-examples-'));
    const rows = [{ prompt: 'a', response: 'b' }, { prompt: 'c, d', response: 'e' }];
    const jsonl = jsonlFile(rows.map((row) => JSON.stringify(row)));
    const csv = join(dir, 'pairs.csv');
    writeFileSync(csv, 'prompt,response\na,b\n"c, d",e\n');
    const parquet = join(dir, 'pairs.parquet');
    writeFileSync(parquet, minimalParquet([{ name: 'prompt', type: 'utf8', values: rows.map((r) => r.prompt) }, { name: 'response', type: 'utf8', values: rows.map((r) => r.response) }]));
    const arrow = join(dir, 'pairs.arrow');
    writeFileSync(arrow, tableToIPC(tableFromArrays({ prompt: rows.map((r) => r.prompt), response: rows.map((r) => r.response) }), 'file'));
    const expected = (await readTextExamples(jsonl, tokenizer)).examples.map((e) => e.example);
    for (const path of [csv, parquet, arrow]) {
      const file = await readTextExamples(path, tokenizer);
      expect(file.format).toBe('prompt_response');
      expect(file.examples.map((e) => e.example)).toEqual(expected);
    }
    expect((await readTextExamples(csv, tokenizer)).examples.map((e) => e.source)).toEqual([`${csv}:2`, `${csv}:3`]);
    expect((await readTextExamples(arrow, tokenizer)).examples.map((e) => e.source)).toEqual([`${arrow}: row 0`, `${arrow}: row 1`]);
  });

  it('picks text when the first record has a text field, with configurable field names', async () => {
    const path = jsonlFile(['{"body":"hey"}']);
    const file = await readTextExamples(path, tokenizer, { textField: 'body' });
    expect(file.format).toBe('text');
    expect(file.examples[0].example.ids).toEqual([BOS, ...bytes('hey'), EOS]);
  });

  it('says which field is missing, where, and what the format expects', async () => {
    const path = jsonlFile(['{"prompt":"a","response":"b"}', '{"prompt":"c"}']);
    await expect(readTextExamples(path, tokenizer)).rejects.toThrow(
      `${path}:2: missing field "response" (format prompt_response expects "prompt" and "response")`,
    );
    const renamed = jsonlFile(['{"q":"a"}']);
    await expect(
      readTextExamples(renamed, tokenizer, { format: 'prompt_response', promptField: 'q', responseField: 'a' }),
    ).rejects.toThrow(`${renamed}:1: missing field "a" (format prompt_response expects "q" and "a")`);
  });

  it('rejects non-string fields, non-object records, unknown shapes and empty files', async () => {
    const numeric = jsonlFile(['{"text":3}']);
    await expect(readTextExamples(numeric, tokenizer)).rejects.toThrow(
      `${numeric}:1: field "text" must be a string, got number`,
    );
    const array = jsonlFile(['["text"]']);
    await expect(readTextExamples(array, tokenizer)).rejects.toThrow(`${array}:1: expected a JSON object, got array`);
    const unknown = jsonlFile(['{"question":"q","answer":"a"}']);
    await expect(readTextExamples(unknown, tokenizer)).rejects.toThrow(
      `${unknown}:1: cannot tell the format from fields ["question", "answer"]`,
    );
    const empty = jsonlFile(['']);
    await expect(readTextExamples(empty, tokenizer)).rejects.toThrow(`${empty}: no records`);
  });

  it('keeps special-token strings in the data as plain text', async () => {
    const path = jsonlFile(['{"text":"<|eos|>"}']);
    const { examples } = await readTextExamples(path, tokenizer, { format: 'text' });
    expect(examples[0].example.ids).toEqual([BOS, ...bytes('<|eos|>'), EOS]);
  });
});

describe('prompt and response templates', () => {
  it('builds the pair from any fields of the record, the response masked as the target', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { createByteLevelTokenizer } = await import('../../src/tokenizer/byte-level.ts');
    const tokenizer = createByteLevelTokenizer();
    const file = join(mkdtempSync(join(tmpdir(), 'templates-')), 'gsm.jsonl');
    writeFileSync(file, '{"question": "1+1?", "answer": "2\\n#### 2"}\n{"question": "2+2?"}\n');
    const options = { promptTemplate: 'Question: {{question}}\nAnswer:', responseTemplate: ' {{answer}}' };
    await expect(readTextExamples(file, tokenizer, options)).rejects.toThrow(`${file}:2: field "answer" must be text, it is missing`);
    writeFileSync(file, '{"question": "1+1?", "answer": "2\\n#### 2"}\n');
    const { format, examples } = await readTextExamples(file, tokenizer, options);
    expect(format).toBe('prompt_response');
    const expected = promptResponseExample('Question: 1+1?\nAnswer:', ' 2\n#### 2', tokenizer);
    expect(examples[0].example).toEqual(expected);
  });
});
