/** A text corpus as JSON Lines, one `{"text": ...}` per line: the format `readTextExamples` reads. */
import { writeFile } from 'node:fs/promises';

export function corpusJsonl(texts: readonly string[]): string {
  return texts.map((text) => `${JSON.stringify({ text })}\n`).join('');
}

export async function writeCorpus(path: string, texts: readonly string[]): Promise<void> {
  await writeFile(path, corpusJsonl(texts), 'utf8');
}
