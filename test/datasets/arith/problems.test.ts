import { describe, expect, it } from 'vitest';
import { gsm8kFinalAnswer } from '../../../datasets/gsm8k.ts';
import { CONTAINERS, DOLLARS, ITEMS, PEOPLE, PURCHASES } from '../../../datasets/arith/arith-words.ts';
import { ARITH_TEMPLATES, arithProblemKey, generateArithProblems, type ArithProblem } from '../../../datasets/arith/problems.ts';
import { evaluate, solutionEquations } from './solution-lines.ts';

const problems = generateArithProblems({ count: 2000, seed: 5 });

/** Each template's answer from its stated numbers, written here independently of the templates. */
const REFERENCE: Record<string, (n: readonly number[]) => number> = {
  add: ([a, b]) => a + b,
  'take-away': ([a, b]) => a - b,
  combine: ([a, b]) => a + b,
  compare: ([a, b]) => a - b,
  groups: ([g, e]) => g * e,
  'times-as-many': ([a, k]) => a * k,
  share: ([t, w]) => t / w,
  'buy-then-give': ([a, b, c]) => a + b - c,
  'give-then-buy': ([a, b, c]) => a - b + c,
  'three-total': ([a, b, c]) => a + b + c,
  'more-than-total': ([a, b]) => a + (a + b),
  'fewer-than-total': ([a, b]) => a + (a - b),
  'groups-plus': ([g, e, c]) => g * e + c,
  'groups-minus': ([g, e, c]) => g * e - c,
  spend: ([a, b, c]) => a - b - c,
  'buy-give-find': ([a, b, c, d]) => a + b - c + d,
  'people-chain': ([a, b, c]) => a + b + (a + b - c),
  'groups-give-find': ([g, e, c, d]) => g * e - c + d,
  'spend-earn': ([a, b, c, d]) => a - b - c + d,
};

const statedNumbers = (question: string): number[] => (question.match(/\d+/g) ?? []).map(Number);
const sorted = (numbers: readonly number[]): number[] => [...numbers].sort((x, y) => x - y);

describe('generateArithProblems', () => {
  it('is deterministic for a seed and varies across seeds', () => {
    expect(generateArithProblems({ count: 2000, seed: 5 })).toEqual(problems);
    const questions = new Set(problems.map((p) => p.question));
    const other = generateArithProblems({ count: 2000, seed: 6 });
    expect(other.filter((p) => questions.has(p.question)).length).toBeLessThan(20);
    expect(questions.size).toBeGreaterThan(1980);
  });

  it('writes solutions whose every line is correct arithmetic, ending in #### and the result', () => {
    for (const { question, answer, result, steps } of problems) {
      const equations = solutionEquations(answer);
      expect(equations).toHaveLength(steps);
      const known = statedNumbers(question);
      for (const equation of equations) {
        expect(evaluate(equation), answer).toBe(equation.c);
        // Each operand is stated in the question or worked out on an earlier line.
        expect(known, answer).toContain(equation.a);
        expect(known, answer).toContain(equation.b);
        known.push(equation.c);
      }
      expect(answer.split('\n').at(-1)).toBe(`#### ${result}`);
      expect(equations.at(-1)!.c).toBe(result);
      expect(gsm8kFinalAnswer(answer)).toBe(String(result));
    }
  });

  it('reaches the answer an independent formula gives, from exactly the numbers the question states', () => {
    expect(Object.keys(REFERENCE).sort()).toEqual(ARITH_TEMPLATES.map((t) => t.id).sort());
    for (const problem of problems) {
      expect(problem.result, problem.question).toBe(REFERENCE[problem.template](problem.numbers));
      expect(sorted(statedNumbers(problem.question)), problem.question).toEqual(sorted(problem.numbers));
    }
  });

  it('keeps numbers small: stated 1 to 20 (a dividend up to 99), results 0 to 99, factors of 2 to 5', () => {
    for (const { template, numbers, answer } of problems) {
      const [first, ...rest] = numbers;
      expect(template === 'share' ? first <= 99 : first <= 20, template).toBe(true);
      for (const n of [first, ...rest]) expect(n).toBeGreaterThanOrEqual(1);
      for (const n of rest) expect(n).toBeLessThanOrEqual(20);
      for (const equation of solutionEquations(answer)) {
        expect(equation.c).toBeGreaterThanOrEqual(0);
        expect(equation.c).toBeLessThanOrEqual(99);
        if (equation.op === '*') expect(Math.min(equation.a, equation.b)).toBeLessThanOrEqual(5);
        if (equation.op === '/') expect(equation.b).toBeLessThanOrEqual(5);
      }
    }
  });

  it('mixes about 40% one-step, 40% two-step and 20% three-step problems from every template', () => {
    const share = (steps: number) => problems.filter((p) => p.steps === steps).length / problems.length;
    expect(share(1)).toBeCloseTo(0.4, 1);
    expect(share(2)).toBeCloseTo(0.4, 1);
    expect(share(3)).toBeCloseTo(0.2, 1);
    expect(new Set(problems.map((p) => p.template))).toEqual(new Set(ARITH_TEMPLATES.map((t) => t.id)));
  });

  it('asks each template in all its phrasings, and no phrasing belongs to two templates', () => {
    const skeletons = new Map<string, Set<string>>();
    for (const { template, question } of problems) {
      if (!skeletons.has(template)) skeletons.set(template, new Set());
      skeletons.get(template)!.add(skeleton(question));
    }
    for (const template of ARITH_TEMPLATES) expect(skeletons.get(template.id)!.size, template.id).toBe(template.questions.length);
    const all = [...skeletons.values()].flatMap((set) => [...set]);
    expect(new Set(all).size).toBe(all.length);
  });

  it('keeps questions within 160 characters and answers within 120, in printable ASCII', () => {
    for (const { question, answer } of problems) {
      expect(question.length).toBeLessThanOrEqual(160);
      expect(answer.length).toBeLessThanOrEqual(120);
      expect(question).toMatch(/^[\x20-\x7e]+\?$/);
      expect(answer).toMatch(/^[\x20-\x7e\n]+$/);
    }
  });

  it('leaves out excluded problems by question and by template and numbers; distinct never repeats one', () => {
    const held = generateArithProblems({ count: 300, seed: 1, distinct: true });
    expect(new Set(held.map(arithProblemKey)).size).toBe(300);
    const heldKeys = new Set(held.map(arithProblemKey));
    const heldQuestions = new Set(held.map((p) => p.question));
    const overlaps = (set: ArithProblem[]) => set.filter((p) => heldKeys.has(arithProblemKey(p)) || heldQuestions.has(p.question));

    expect(overlaps(generateArithProblems({ count: 3000, seed: 2 })).length).toBeGreaterThan(10);
    expect(overlaps(generateArithProblems({ count: 3000, seed: 2, exclude: held }))).toEqual([]);
  });

  it('rejects a count that is not a non-negative integer', () => {
    expect(generateArithProblems({ count: 0, seed: 1 })).toEqual([]);
    expect(() => generateArithProblems({ count: -1, seed: 1 })).toThrow('count: expected a non-negative integer, got -1');
    expect(() => generateArithProblems({ count: 2.5, seed: 1 })).toThrow(RangeError);
  });
});

const WORDS = [...ITEMS, ...CONTAINERS, DOLLARS].flatMap((w) => [w.one, w.many]).concat(PURCHASES);

/** A question with its numbers, names, nouns and pronouns blanked out: what is left is its phrasing. */
function skeleton(question: string): string {
  return question
    .replace(/\d+/g, 'N')
    .replace(new RegExp(`\\b(${PEOPLE.map((p) => p.name).join('|')})\\b`, 'g'), 'P')
    .replace(new RegExp(`\\b(${WORDS.join('|')})\\b`, 'g'), 'W')
    .replace(/\b([Ss]he|[Hh]e)\b/g, 'S')
    .replace(/\b(her|him)\b/g, 'O');
}
