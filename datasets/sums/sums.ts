/**
 * The quickstart's task: three-term sums `a+b+c` (terms 1 to 49) worked in two written steps,
 * `a+b=s. s+c=t.` then `#### t`, as GSM8K-style records. A byte-level teacher of about 0.8M parameters
 * learns the carries in a few minutes on 2 CPU cores, which a student at a fifth of its size does not.
 * Deterministic for a seed.
 */
import { Rng } from '../../src/util/rng.ts';

export const MAX_TERM = 49;

export interface SumProblem {
  terms: readonly [number, number, number];
  question: string;
  /** `a+b=s. s+c=t.` then `#### t` on a line of its own. */
  answer: string;
  result: number;
}

export interface SumsOptions {
  count: number;
  seed: number;
  /** None of the problems made asks one of these questions. */
  exclude?: readonly SumProblem[];
}

/** Draws allowed for one problem before giving up: far above what a satisfiable request needs. */
const MAX_DRAWS = 10_000;

export function sumProblem(terms: readonly [number, number, number]): SumProblem {
  const [a, b, c] = terms;
  const partial = a + b;
  const result = partial + c;
  return { terms, question: `${a}+${b}+${c}`, answer: `${a}+${b}=${partial}. ${partial}+${c}=${result}.\n#### ${result}`, result };
}

/** `count` distinct problems, none asked in `exclude`. */
export function generateSums({ count, seed, exclude = [] }: SumsOptions): SumProblem[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count: expected a non-negative integer, got ${count}`);
  const rng = new Rng(seed);
  const taken = new Set(exclude.map((problem) => problem.question));
  const problems: SumProblem[] = [];
  while (problems.length < count) {
    const problem = drawUntaken(rng, taken, problems.length);
    taken.add(problem.question);
    problems.push(problem);
  }
  return problems;
}

function drawUntaken(rng: Rng, taken: ReadonlySet<string>, index: number): SumProblem {
  for (let draw = 0; draw < MAX_DRAWS; draw++) {
    const problem = sumProblem([drawTerm(rng), drawTerm(rng), drawTerm(rng)]);
    if (!taken.has(problem.question)) return problem;
  }
  throw new RangeError(`generateSums: no untaken problem after ${MAX_DRAWS} draws (problem ${index}); ask for fewer`);
}

function drawTerm(rng: Rng): number {
  return 1 + rng.int(MAX_TERM);
}
