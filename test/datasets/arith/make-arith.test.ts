import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gsm8kFinalAnswer, gsm8kJsonl, readGsm8k } from '../../../datasets/gsm8k.ts';
import { ARITH_FILES, arithSplits } from '../../../datasets/arith/make-arith.ts';
import { DATA_DIR } from '../../../datasets/data-dir.ts';
import { arithProblemKey } from '../../../datasets/arith/problems.ts';
import { evaluate, solutionEquations } from './solution-lines.ts';

const splits = arithSplits();
const pathOf = (split: 'train' | 'test') => join(DATA_DIR, ARITH_FILES[split].file);

describe('committed arithmetic files', () => {
  it.each(['train', 'test'] as const)('arith-%s.jsonl is what make-arith.ts generates', (split) => {
    expect(splits[split]).toHaveLength(ARITH_FILES[split].count);
    expect(readFileSync(pathOf(split), 'utf8')).toBe(gsm8kJsonl(splits[split]));
  });

  it('stay together under 1.5 MB', () => {
    expect(statSync(pathOf('train')).size + statSync(pathOf('test')).size).toBeLessThan(1.5 * 1024 * 1024);
  });

  it.each(['train', 'test'] as const)('arith-%s.jsonl reads as GSM8K, each final answer what its lines compute', async (split) => {
    const problems = await readGsm8k(pathOf(split));
    expect(problems).toHaveLength(ARITH_FILES[split].count);
    for (const { question, solution, answer } of problems) {
      const equations = solutionEquations(`${solution}\n#### ${answer}`);
      expect(equations.length).toBeGreaterThanOrEqual(1);
      for (const equation of equations) expect(evaluate(equation), question).toBe(equation.c);
      expect(answer, question).toBe(String(equations.at(-1)!.c));
      expect(gsm8kFinalAnswer(`${solution}\n#### ${answer}`)).toBe(answer);
    }
  });

  it('share no question, and no template with the same numbers, between train and test', async () => {
    const testQuestions = new Set((await readGsm8k(pathOf('test'))).map((p) => p.question));
    const trainQuestions = (await readGsm8k(pathOf('train'))).map((p) => p.question);
    expect(trainQuestions.filter((q) => testQuestions.has(q))).toEqual([]);

    const testKeys = new Set(splits.test.map(arithProblemKey));
    expect(testKeys.size).toBe(splits.test.length);
    expect(splits.train.filter((p) => testKeys.has(arithProblemKey(p)))).toEqual([]);
  });
});
