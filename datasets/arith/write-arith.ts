/** Arithmetic problems as GSM8K JSON Lines, one `{"question", "answer"}` per line: the format `readGsm8k` reads. */
import { writeFile } from 'node:fs/promises';
import type { ArithProblem } from './problems.ts';

export function arithJsonl(problems: readonly ArithProblem[]): string {
  return problems.map(({ question, answer }) => `${JSON.stringify({ question, answer })}\n`).join('');
}

export async function writeArith(path: string, problems: readonly ArithProblem[]): Promise<void> {
  await writeFile(path, arithJsonl(problems), 'utf8');
}
