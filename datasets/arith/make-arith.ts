/**
 * Writes the committed arithmetic problems. Run from the repository root: `npx tsx datasets/arith/make-arith.ts`.
 * The test split is drawn first with distinct problems; the train split then leaves out every test question
 * and every test (template, numbers), so a model scored on the test split has not seen those problems.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DATA_DIR } from '../data-dir.ts';
import { writeGsm8kJsonl } from '../gsm8k.ts';
import { generateArithProblems, type ArithProblem } from './problems.ts';

export const ARITH_FILES = {
  train: { file: 'arith-train.jsonl', seed: 11, count: 4000 },
  test: { file: 'arith-test.jsonl', seed: 12, count: 200 },
} as const;

export function arithSplits(): { train: ArithProblem[]; test: ArithProblem[] } {
  const { train, test } = ARITH_FILES;
  const testProblems = generateArithProblems({ seed: test.seed, count: test.count, distinct: true });
  const trainProblems = generateArithProblems({ seed: train.seed, count: train.count, exclude: testProblems });
  return { train: trainProblems, test: testProblems };
}

async function main(): Promise<void> {
  const splits = arithSplits();
  for (const split of ['train', 'test'] as const) {
    await writeGsm8kJsonl(join(DATA_DIR, ARITH_FILES[split].file), splits[split]);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
