/**
 * The run directory, in one place:
 *
 *   <output_dir>/<name>/
 *     recipe.yaml            the resolved recipe the run used
 *     metrics.jsonl          one JSON object per line (metrics.ts)
 *     checkpoints/step-000100/   complete checkpoints only (written with replaceDirAtomic)
 *     final/                 the finished model or adapter
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface RunPaths {
  root: string;
  recipe: string;
  metrics: string;
  checkpoints: string;
  final: string;
  /** The folder of the checkpoint taken after `step` optimizer steps. */
  checkpoint(step: number): string;
}

export function runPaths(outputDir: string, name: string): RunPaths {
  return runPathsAt(join(outputDir, name));
}

export function runPathsAt(root: string): RunPaths {
  const checkpoints = join(root, 'checkpoints');
  return {
    root,
    recipe: join(root, 'recipe.yaml'),
    metrics: join(root, 'metrics.jsonl'),
    checkpoints,
    final: join(root, 'final'),
    checkpoint: (step) => join(checkpoints, checkpointDirName(step)),
  };
}

/** `step-000100`: zero-padded so that names sort by step in a file listing (up to a million steps). */
export function checkpointDirName(step: number): string {
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`checkpoint step must be an integer >= 0, got ${step}`);
  return `step-${String(step).padStart(6, '0')}`;
}

/** The step a checkpoint folder name stands for, or undefined for any other name (temp folders included). */
export function checkpointStep(dirName: string): number | undefined {
  const match = /^step-(\d{6,})$/.exec(dirName);
  return match ? Number(match[1]) : undefined;
}

export interface CheckpointRef {
  step: number;
  path: string;
}

/** The run's checkpoints, oldest first; none when the folder does not exist yet. */
export async function listCheckpoints(root: string): Promise<CheckpointRef[]> {
  const { checkpoints } = runPathsAt(root);
  const entries = await readdir(checkpoints, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  return entries
    .filter((entry) => entry.isDirectory())
    .flatMap((entry) => {
      const step = checkpointStep(entry.name);
      return step === undefined ? [] : [{ step, path: join(checkpoints, entry.name) }];
    })
    .sort((a, b) => a.step - b.step);
}

export async function latestCheckpoint(root: string): Promise<CheckpointRef | undefined> {
  return (await listCheckpoints(root)).at(-1);
}
