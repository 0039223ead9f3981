/**
 * Writes the quickstart's committed sums. Run from the repository root: `npx tsx datasets/sums/make-sums.ts`.
 * The test split is drawn first; the train split leaves out every test question.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DATA_DIR } from '../data-dir.ts';
import { writeGsm8kJsonl } from '../gsm8k.ts';
import { generateSums, type SumProblem } from './sums.ts';

export const SUMS_FILES = {
  train: { file: 'sums-train.jsonl', seed: 21, count: 6000 },
  test: { file: 'sums-test.jsonl', seed: 22, count: 1000 },
} as const;

export const sumsPath = (split: 'train' | 'test'): string => join(DATA_DIR, SUMS_FILES[split].file);

export function sumsSplits(): { train: SumProblem[]; test: SumProblem[] } {
  const { train, test } = SUMS_FILES;
  const testProblems = generateSums({ seed: test.seed, count: test.count });
  return { train: generateSums({ seed: train.seed, count: train.count, exclude: testProblems }), test: testProblems };
}

async function main(): Promise<void> {
  const splits = sumsSplits();
  for (const split of ['train', 'test'] as const) await writeGsm8kJsonl(sumsPath(split), splits[split]);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
