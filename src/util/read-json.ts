import { readFile } from 'node:fs/promises';

export type JsonFileProblem = 'missing' | 'unreadable' | 'invalid';

/**
 * A JSON file's parsed content. Each caller turns a problem into its own error (class, code, wording), so
 * that every message names the file and says whether it is missing, unreadable or not JSON.
 */
export async function readJsonFile(
  path: string,
  fail: (problem: JsonFileProblem, detail: string, cause: unknown) => Error,
): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw fail(missing ? 'missing' : 'unreadable', missing ? 'file not found' : (error as Error).message, error);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw fail('invalid', `not valid JSON (${(error as Error).message})`, error);
  }
}
