import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  answersMatch,
  argmax,
  continuationLogprobs,
  extractAnswer,
  extractChoiceLetter,
  generatedText,
  normalizeAnswer,
  solutionIsCorrect,
  stripLikePython,
} from '../../src/eval/answers.ts';

// Expected values follow lm-evaluation-harness's RegexFilter (re.findall, group_select, first non-empty
// group of a tuple, strip) on the gsm8k / gsm8k_cot patterns, checked against Python's `re`.
// Columns: output, strict (gsm8k), strict (cot), flexible.
const EXTRACTIONS: [string, string | null, string | null, string | null][] = [
  ['So she pays $1,234.', null, null, '$1,234.'],
  ['#### 29.00', '29.00', null, '29.00'],
  ['#### -7', '-7', null, '-7'],
  ['3 + 4 = 7 apples, then 10 more: 17', null, null, '17'],
  ["I don't know", null, null, null],
  // The flexible filter takes the last run of [$0-9.,], and an ellipsis is one.
  ['#### 42 and then the next question...', '42', null, '...'],
  ['#### 42.', '42.', null, '42.'],
  ['#### 1,2,3,4', '1,2,3,4', null, '1,2,3,4'],
  ['#### 42\n#### 43', '42', null, '43'],
  ['It costs 3 dollars.\n#### 3\n\nQuestion: 5 apples', '3', null, '5'],
  ['The answer is 18.', null, '18', '18.'],
  ['The answer is 18.\n\nQ: next', null, '18', '18.'],
  ['The answer is 1,000,000.', null, '1,000,000', '1,000,000.'],
  ['The answer is -3.', null, '-3', '-3.'],
  // The cot pattern ends in an unescaped `.`, which must eat one character that is not `\n`: at the end
  // of the text or before a newline it takes the last digit.
  ['The answer is 18', null, '1', '18'],
  ['The answer is 18\n', null, '1', '18'],
  // Python's `.` matches `\r` (JavaScript's does not).
  ['The answer is 18\r\n', null, '18', '18'],
  ['The answer is $18.', null, null, '$18.'],
  ['-$5.00 back', null, null, '-$5.00'],
  ['The change is -5 degrees', null, null, '-5'],
  ['first 12 then 3,000 then 45.5', null, null, '45.5'],
  ['x 5.', null, null, '5.'],
];

describe('extractAnswer', () => {
  it.each(EXTRACTIONS)('%j', (output, strict, cot, flexible) => {
    expect(extractAnswer(output, 'strict-match')).toBe(strict);
    expect(extractAnswer(output, 'strict-match', 'cot')).toBe(cot);
    expect(extractAnswer(output, 'flexible-extract')).toBe(flexible);
    expect(extractAnswer(output, 'flexible-extract', 'cot')).toBe(flexible);
  });
});

describe('normalizeAnswer (regexes_to_ignore , \\$ (?s).*####<space> \\.$ then lower-case)', () => {
  it.each([
    ['$1,234.', '1234'],
    ['29.00', '29.00'],
    ['1,2,3,4', '1234'],
    ['-$5.00', '-5.00'],
    ['5.5.', '5.5'],
    ['...', '..'],
    ['ABC', 'abc'],
    // Everything up to the last `#### `.
    ['Step one.\n#### 12 #### 13', '13'],
    // Commas go first, so they cannot hide a `#### `.
    ['####, 5', '5'],
    // Python's `$` also matches before a final newline; nothing is trimmed.
    ['42.\n', '42\n'],
    [' 42', ' 42'],
  ])('%j -> %j', (text, normalized) => {
    expect(normalizeAnswer(text)).toBe(normalized);
  });
});

describe('answersMatch', () => {
  const reference = 'Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 1,072';
  it.each([
    ['1072', true],
    ['1,072', true],
    ['$1,072.', true],
    ['1072.00', false],
    ['1072.\n', false],
    ['-1072', false],
    ['1,0,7,2', true],
  ])('%j against a full GSM8K answer: %s', (prediction, expected) => {
    expect(answersMatch(prediction, reference)).toBe(expected);
  });

  it('never matches a missing answer, not even an empty reference', () => {
    expect(answersMatch(null, '')).toBe(false);
  });

  it('29.00 is not 29, as in the harness', () => {
    expect(answersMatch(extractAnswer('#### 29.00', 'strict-match'), '29')).toBe(false);
    expect(answersMatch(extractAnswer('#### 29', 'strict-match'), '29')).toBe(true);
  });

  it('finds any integer written with thousands commas after ####', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e9, max: 1e9 }), fc.string(), (n, before) => {
        const output = `${before.replaceAll('#', '')}\n#### ${n.toLocaleString('en-US')}`;
        expect(answersMatch(extractAnswer(output, 'strict-match'), String(n))).toBe(true);
      }),
      { seed: 7 },
    );
  });
});

describe('solutionIsCorrect', () => {
  it('uses #### N when present, else the last number', () => {
    expect(solutionIsCorrect('2 + 3 = 5\n#### 5', '5')).toBe(true);
    expect(solutionIsCorrect('2 + 3 = 5\n#### 6', '5')).toBe(false);
    expect(solutionIsCorrect('2 + 3 = 5, so the answer is 5', '5')).toBe(true);
    expect(solutionIsCorrect('no idea', '5')).toBe(false);
  });
});

describe('stripLikePython', () => {
  it('removes what str.strip() removes, which is not what trim() removes', () => {
    expect(stripLikePython(' \t\nWhat is 2+2?\r\n ')).toBe('What is 2+2?');
    expect(stripLikePython('\x1fquestion\x85')).toBe('question');
    expect(stripLikePython('\ufeffquestion')).toBe('\ufeffquestion');
    expect(stripLikePython('a b')).toBe('a b');
  });
});

describe('extractChoiceLetter', () => {
  it.each([
    [' B', 'B'],
    ['C.', 'C'],
    ['(D) because', 'D'],
    ['Answer: A', 'A'],
    [' b', null],
    [' E', null],
    ['', null],
  ])('%j -> %j', (output, letter) => {
    expect(extractChoiceLetter(output, ['A', 'B', 'C', 'D'])).toBe(letter);
  });
});

describe('argmax', () => {
  it('takes the first of equal maxima, as numpy does', () => {
    expect(argmax([-3, -1, -1, -2])).toBe(1);
    expect(argmax([-Infinity, -5])).toBe(1);
    expect(() => argmax([])).toThrow(RangeError);
  });
});

describe('response kinds', () => {
  it('returns what the request asked for and refuses the other kind', () => {
    expect(generatedText({ kind: 'generate', text: 'hi' }, 'doc:1')).toBe('hi');
    expect(continuationLogprobs({ kind: 'loglikelihood', logprobs: [-1, -2], greedy: [true, false] }, 'doc:1', 2)).toEqual([-1, -2]);
    expect(() => generatedText({ kind: 'loglikelihood', logprobs: [], greedy: [] }, 'doc:1')).toThrow(/doc:1: expected a generate/);
    expect(() => continuationLogprobs({ kind: 'generate', text: '' }, 'doc:2', 4)).toThrow(/doc:2: expected a loglikelihood/);
    expect(() => continuationLogprobs({ kind: 'loglikelihood', logprobs: [-1], greedy: [true] }, 'doc:3', 4)).toThrow(/expected 4/);
  });
});
