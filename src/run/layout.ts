/**
 * The run directory, in one place:
 *
 *   <output_dir>/<name>/
 *     recipe.yaml            the resolved recipe the run used
 *     metrics.jsonl          one JSON object per line (metrics.ts)
 *     checkpoints/step-00000100/ complete checkpoints only (see trainers/checkpoint.ts)
 *     final/                 the finished model or adapter
 */
import { join } from 'node:path';
import { checkpointDir } from '../../trainers/checkpoint.ts';

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
    checkpoint: (step) => checkpointDir(checkpoints, step),
  };
}
