import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SlmError } from '../util/errors.ts';

const run = promisify(execFile);

/**
 * Runs a bench worker script (`node --import tsx <worker> '<json input>'`) in a process of its own and
 * returns the JSON of its last output line; a failure becomes an error naming `what` and the worker's own
 * error line.
 */
export async function runBenchWorker<T>(worker: URL, input: unknown, what: string): Promise<T> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', worker.pathname, JSON.stringify(input)], { maxBuffer: 1 << 20 });
    return JSON.parse(stdout.trim().split('\n').pop()!) as T;
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? '');
    const reason = stderr.split('\n').find((line) => /^\w*Error: /.test(line)) ?? (error as Error).message.split('\n')[0];
    throw new SlmError(`bench: ${what} failed: ${reason.slice(0, 400)}`, { code: 'ERR_BENCH' });
  }
}
