/**
 * Every attempt at the generate stage, failed ones included, one JSON line each in data/cache/attempts.jsonl,
 * so the summary counts all the requests, retries, failures and time a data set cost, not the last try's.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { TeacherCounters } from '../../run/data-summary.ts';

export interface GenerateAttempt {
  started: string;
  seconds: number;
  outcome: 'ok' | 'failed';
  /** Null for a local teacher, which sends no requests. */
  teacherRequests: TeacherCounters | null;
}

/** Appends `attempt` and returns every attempt recorded so far, in order; unreadable lines are skipped. */
export async function recordAttempt(file: string, attempt: GenerateAttempt): Promise<GenerateAttempt[]> {
  await mkdir(dirname(file), { recursive: true });
  const previous = await readFile(file, 'utf8').catch(() => '');
  // A kill mid-append leaves a line without its newline: start on a fresh line.
  await appendFile(file, `${previous === '' || previous.endsWith('\n') ? '' : '\n'}${JSON.stringify(attempt)}\n`);
  return [...previous.split('\n').flatMap(parseAttempt), attempt];
}

/** Counters summed over attempts; null when no attempt sent requests. */
export function totalRequests(attempts: readonly GenerateAttempt[]): TeacherCounters | null {
  const counted = attempts.flatMap((a) => (a.teacherRequests ? [a.teacherRequests] : []));
  if (counted.length === 0) return null;
  const sum = (key: keyof TeacherCounters) => counted.reduce((total, c) => total + c[key], 0);
  return { requests: sum('requests'), retries: sum('retries'), failures: sum('failures'), timeouts: sum('timeouts'), tokens: sum('tokens') };
}

function parseAttempt(line: string): GenerateAttempt[] {
  try {
    const value = JSON.parse(line) as GenerateAttempt;
    return typeof value?.seconds === 'number' && typeof value.outcome === 'string' ? [value] : [];
  } catch {
    return [];
  }
}
