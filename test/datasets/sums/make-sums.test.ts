import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gsm8kJsonl, readGsm8k } from '../../../datasets/gsm8k.ts';
import { SUMS_FILES, sumsPath, sumsSplits } from '../../../datasets/sums/make-sums.ts';
import { MAX_TERM, generateSums, sumProblem } from '../../../datasets/sums/sums.ts';

const splits = sumsSplits();

describe('sums', () => {
  it('works a sum in two steps whose numbers are the partial and the final sum', () => {
    expect(sumProblem([38, 27, 49])).toEqual({
      terms: [38, 27, 49],
      question: '38+27+49',
      answer: '38+27=65. 65+49=114.\n#### 114',
      result: 114,
    });
  });

  it('draws distinct problems with terms 1 to 49, the same for a seed and different for another', () => {
    const problems = generateSums({ count: 3000, seed: 5 });
    expect(new Set(problems.map((p) => p.question)).size).toBe(3000);
    const terms = problems.flatMap((p) => p.terms);
    expect(Math.min(...terms)).toBe(1);
    expect(Math.max(...terms)).toBe(MAX_TERM);
    expect(generateSums({ count: 3000, seed: 5 })).toEqual(problems);
    expect(generateSums({ count: 20, seed: 6 })).not.toEqual(problems.slice(0, 20));
  });

  it('refuses a negative count and leaves out the questions of exclude', () => {
    const all = generateSums({ count: 10, seed: 1 });
    expect(() => generateSums({ count: -1, seed: 1 })).toThrow(/count: expected a non-negative integer, got -1/);
    expect(generateSums({ count: 5, seed: 1, exclude: all }).filter((p) => all.some((q) => q.question === p.question))).toEqual([]);
  });
});

describe('committed sums files', () => {
  it.each(['train', 'test'] as const)('sums-%s.jsonl is what make-sums.ts generates', (split) => {
    expect(splits[split]).toHaveLength(SUMS_FILES[split].count);
    expect(readFileSync(sumsPath(split), 'utf8')).toBe(gsm8kJsonl(splits[split]));
  });

  it.each(['train', 'test'] as const)('sums-%s.jsonl reads as GSM8K with the sum as its final answer', async (split) => {
    for (const { question, answer } of await readGsm8k(sumsPath(split))) {
      const total = question.split('+').reduce((sum, term) => sum + Number(term), 0);
      expect(answer, question).toBe(String(total));
    }
  });

  it('share no question between train and test', () => {
    const test = new Set(splits.test.map((p) => p.question));
    expect(splits.train.filter((p) => test.has(p.question))).toEqual([]);
  });
});
