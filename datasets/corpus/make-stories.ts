/**
 * Writes the committed story corpora. Run from the repository root: `npx tsx datasets/corpus/make-stories.ts`.
 * About 1.6 MB for training and 100 KB for tests; the two use different seeds, so they share few stories.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DATA_DIR } from '../data-dir.ts';
import { generateStoryCorpus } from './stories.ts';
import { writeCorpus } from './write-corpus.ts';

export const STORY_FILES = [
  { file: 'stories.jsonl', seed: 1, count: 3600 },
  { file: 'stories-small.jsonl', seed: 2, count: 220 },
] as const;

async function main(): Promise<void> {
  for (const { file, seed, count } of STORY_FILES) {
    await writeCorpus(join(DATA_DIR, file), generateStoryCorpus({ seed, count }));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
