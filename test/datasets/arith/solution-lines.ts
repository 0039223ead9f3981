/** Reads a generated worked solution back into its equations, so tests can redo its arithmetic. */

export interface Equation {
  a: number;
  op: string;
  b: number;
  /** What the line claims. */
  c: number;
}

const EQUATION = /(\d+) ([-+*/]) (\d+) = (\d+)/g;

/** One equation per line before the `#### N` line; throws naming the line when a line has none or several. */
export function solutionEquations(answer: string): Equation[] {
  const lines = answer.split('\n').slice(0, -1);
  return lines.map((line) => {
    const found = [...line.matchAll(EQUATION)];
    if (found.length !== 1) throw new Error(`expected one "a op b = c" in ${JSON.stringify(line)}, found ${found.length}`);
    const [, a, op, b, c] = found[0];
    return { a: Number(a), op, b: Number(b), c: Number(c) };
  });
}

/** The value of `a op b` computed here, independently of the generator; NaN where it is not a whole number. */
export function evaluate({ a, op, b }: Equation): number {
  const value = op === '+' ? a + b : op === '-' ? a - b : op === '*' ? a * b : a / b;
  return Number.isInteger(value) ? value : NaN;
}
