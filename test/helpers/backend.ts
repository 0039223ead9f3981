import { initBackend, type BackendChoice } from '../../src/backend/index.ts';

/** Each test file runs in its own process (vitest forks), so one backend per file. */
export async function useBackend(choice: Exclude<BackendChoice, 'auto'>): Promise<void> {
  await initBackend(choice);
}
