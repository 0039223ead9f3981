/**
 * What one kind of arithmetic problem is made of: the numbers its question states, the steps that solve
 * it, and several ways to ask it that share one worked solution (so a model must read the question to
 * know which operation it asks for).
 */
import type { Rng } from '../../src/util/rng.ts';
import type { Noun, Person } from './arith-words.ts';

export type Op = '+' | '-' | '*' | '/';

/** One line of a worked solution: `a op b = c`. */
export interface Step {
  a: number;
  op: Op;
  b: number;
  c: number;
}

/** The words a problem is told with, drawn once per problem. */
export interface Cast {
  /** Three different people; `p` is the one the question is about. */
  p: Person;
  q: Person;
  r: Person;
  item: Noun;
  container: Noun;
  /** Two different things to buy. */
  buys: [string, string];
}

export interface Template {
  /** Names the structure, not the phrasing: a problem is identified by its template id and numbers. */
  id: string;
  /** The numbers the question states, in a fixed order. */
  draw(rng: Rng): number[];
  solve(numbers: number[]): Step[];
  questions: Array<(cast: Cast, numbers: number[]) => string>;
  /** One line per step, each holding that step's `eq(step)`. */
  solution(cast: Cast, steps: Step[]): string[];
}

const APPLY: Record<Op, (a: number, b: number) => number> = {
  '+': (a, b) => a + b,
  '-': (a, b) => a - b,
  '*': (a, b) => a * b,
  '/': (a, b) => a / b,
};

export function step(a: number, op: Op, b: number): Step {
  return { a, op, b, c: APPLY[op](a, b) };
}

/** The equation as a solution line writes it: `7 + 5 = 12`. */
export function eq({ a, op, b, c }: Step): string {
  return `${a} ${op} ${b} = ${c}`;
}

/** Integer in [lo, hi]. */
export function between(rng: Rng, lo: number, hi: number): number {
  return lo + rng.int(hi - lo + 1);
}

/** The noun in the number it follows: `noun(apple, 1)` is "apple", `noun(apple, 0)` is "apples". */
export function noun(word: Noun, n: number): string {
  return n === 1 ? word.one : word.many;
}

/** "7 apples", "1 apple". */
export function qty(word: Noun, n: number): string {
  return `${n} ${noun(word, n)}`;
}

export function cap(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
