/**
 * Generated GSM8K-style arithmetic word problems for training small models from scratch: one to three
 * steps with small numbers (stated numbers 1 to 20, a dividend up to 99, every result 0 to 99), short
 * formulaic solutions ending in `#### N`. Deterministic for a seed.
 */
import { Rng } from '../../src/util/rng.ts';
import { CONTAINERS, ITEMS, PEOPLE, PURCHASES } from './arith-words.ts';
import { ONE_STEP } from './one-step.ts';
import { THREE_STEP } from './three-step.ts';
import type { Cast, Step, Template } from './template.ts';
import { TWO_STEP } from './two-step.ts';

export interface ArithProblem {
  /** The template's id: with `numbers`, what a problem is apart from its wording. */
  template: string;
  /** The numbers the question states, in the template's order. */
  numbers: readonly number[];
  /** How many lines of arithmetic the solution has. */
  steps: number;
  question: string;
  /** The worked solution, one line per step, then `#### <result>`. */
  answer: string;
  result: number;
}

export interface ArithOptions {
  count: number;
  seed: number;
  /** None of the problems made shares a question or a template and numbers with these. */
  exclude?: readonly ArithProblem[];
  /** No two problems made share a template and numbers (the one-step templates have only a few hundred). */
  distinct?: boolean;
}

/** How often a problem takes one, two or three steps. */
const STEP_MIX: ReadonlyArray<{ share: number; templates: readonly Template[] }> = [
  { share: 0.4, templates: ONE_STEP },
  { share: 0.4, templates: TWO_STEP },
  { share: 0.2, templates: THREE_STEP },
];

export const ARITH_TEMPLATES: readonly Template[] = STEP_MIX.flatMap(({ templates }) => templates);

const MAX_RESULT = 99;
/** Draws allowed for one problem before giving up: far above what a satisfiable request needs. */
const MAX_DRAWS = 10_000;

export function generateArithProblems({ count, seed, exclude = [], distinct = false }: ArithOptions): ArithProblem[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count: expected a non-negative integer, got ${count}`);
  const rng = new Rng(seed);
  const taken = new Set(exclude.flatMap((problem) => [arithProblemKey(problem), problem.question]));
  const problems: ArithProblem[] = [];
  while (problems.length < count) {
    const problem = drawUntaken(rng, taken, problems.length);
    if (distinct) taken.add(arithProblemKey(problem));
    problems.push(problem);
  }
  return problems;
}

/** `template:n1,n2,...`: equal for two problems that differ only in wording. */
export function arithProblemKey({ template, numbers }: Pick<ArithProblem, 'template' | 'numbers'>): string {
  return `${template}:${numbers.join(',')}`;
}

function drawUntaken(rng: Rng, taken: ReadonlySet<string>, index: number): ArithProblem {
  for (let draw = 0; draw < MAX_DRAWS; draw++) {
    const problem = drawProblem(rng);
    if (!taken.has(arithProblemKey(problem)) && !taken.has(problem.question)) return problem;
  }
  throw new RangeError(`generateArithProblems: no problem outside exclude after ${MAX_DRAWS} draws (problem ${index}); ask for fewer`);
}

function drawProblem(rng: Rng): ArithProblem {
  const template = pickTemplate(rng);
  const [numbers, steps] = drawNumbers(rng, template);
  const cast = drawCast(rng);
  const question = pick(rng, template.questions)(cast, numbers);
  const result = steps[steps.length - 1].c;
  const answer = [...template.solution(cast, steps), `#### ${result}`].join('\n');
  return { template: template.id, numbers, steps: steps.length, question, answer, result };
}

function pickTemplate(rng: Rng): Template {
  let u = rng.next();
  const group = STEP_MIX.find(({ share }) => (u -= share) < 0) ?? STEP_MIX[STEP_MIX.length - 1];
  return pick(rng, group.templates);
}

/** Numbers whose every step gives a whole number from 0 to MAX_RESULT. */
function drawNumbers(rng: Rng, template: Template): [number[], Step[]] {
  for (let draw = 0; draw < MAX_DRAWS; draw++) {
    const numbers = template.draw(rng);
    const steps = template.solve(numbers);
    if (steps.every(({ c }) => Number.isInteger(c) && c >= 0 && c <= MAX_RESULT)) return [numbers, steps];
  }
  throw new Error(`arith template "${template.id}": no numbers with results in 0..${MAX_RESULT} after ${MAX_DRAWS} draws`);
}

function drawCast(rng: Rng): Cast {
  const [p, q, r] = rng.shuffle([...PEOPLE]);
  const [first, second] = rng.shuffle([...PURCHASES]);
  return { p, q, r, item: pick(rng, ITEMS), container: pick(rng, CONTAINERS), buys: [first, second] };
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}
