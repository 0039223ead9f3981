/**
 * The run directory, in one place:
 *
 *   <output_dir>/<name>/
 *     recipe.yaml            the resolved recipe the run used
 *     metrics.jsonl          one JSON object per line (metrics.ts)
 *     checkpoints/step-00000100/ complete checkpoints only, named by trainers/checkpoint.ts
 *     final/                 the finished model or adapter
 *     reference-logps.json   train.objective dpo: the reference's log-probability of each pair's sides (stages/reference-logps.ts)
 *     ce-baseline/           with distill.compare_ce: the same student trained with CE alone (metrics, checkpoints, final)
 *     eval/                  evaluation results (eval/teacher/, eval/ce-baseline/ for other targets)
 *     export/<format>/       exports of final/
 *     data/                  what the generate stage wrote:
 *       shard-00000.arrow      training examples with soft labels (formats/arrow-examples.ts)
 *       summary.json           counts, and the list of shards the train stage reads (data-summary.ts)
 *       conversations.jsonl    the same examples as text in chat form ({messages: [system, user, assistant]})
 *       preferences.jsonl      generate.mode preference: the pairs ({prompt, chosen, rejected}) instead of shards
 *       cache/responses.jsonl  every teacher answer by request key (response-cache.ts)
 */
import { join } from 'node:path';

export interface RunPaths {
  root: string;
  recipe: string;
  metrics: string;
  checkpoints: string;
  final: string;
  referenceLogps: string;
  data: string;
  dataSummary: string;
  /** The generated examples as OpenAI-style `messages` lines, which `data.format: messages` (and other tools) read. */
  conversations: string;
  /** The preference pairs generate.mode preference writes. */
  preferences: string;
  responseCache: string;
  /** One line per attempt at the generate stage (stages/generate/attempts.ts). */
  generateAttempts: string;
  /** The `index`th example shard. */
  shard(index: number): string;
}

export const CE_BASELINE_DIR = 'ce-baseline';

/**
 * The CE-only baseline's own folder for its checkpoints, metrics and final/, reading the run's generated
 * data: it trains on exactly what the distilled student trained on.
 */
export function ceBaselinePaths(run: RunPaths): RunPaths {
  const own = runPathsAt(join(run.root, CE_BASELINE_DIR));
  return { ...own, data: run.data, dataSummary: run.dataSummary, conversations: run.conversations, preferences: run.preferences, responseCache: run.responseCache, generateAttempts: run.generateAttempts, shard: run.shard };
}

export function runPaths(outputDir: string, name: string): RunPaths {
  return runPathsAt(join(outputDir, name));
}

export function runPathsAt(root: string): RunPaths {
  const data = join(root, 'data');
  return {
    root,
    recipe: join(root, 'recipe.yaml'),
    metrics: join(root, 'metrics.jsonl'),
    checkpoints: join(root, 'checkpoints'),
    final: join(root, 'final'),
    referenceLogps: join(root, 'reference-logps.json'),
    data,
    dataSummary: join(data, 'summary.json'),
    conversations: join(data, 'conversations.jsonl'),
    preferences: join(data, 'preferences.jsonl'),
    responseCache: join(data, 'cache', 'responses.jsonl'),
    generateAttempts: join(data, 'cache', 'attempts.jsonl'),
    shard: (index) => join(data, `shard-${String(index).padStart(5, '0')}.arrow`),
  };
}
