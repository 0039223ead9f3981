/**
 * The examples a generate stage wrote (<run>/data/summary.json and the shards it lists), checked against
 * the student that is about to train on them.
 */
import { checkManifestFits, readExampleShard, type ExampleManifest, type ExampleRow } from '../src/formats/arrow-examples.ts';
import { readJsonFile } from '../src/util/read-json.ts';
import type { TextExample } from '../trainers/packing.ts';
import { DatasetError } from './errors.ts';
import type { SourcedExample } from './text-examples.ts';

export interface GeneratedData {
  manifest: ExampleManifest;
  rows: ExampleRow[];
}

export async function readGeneratedData(summaryPath: string, student: { vocabSize: number; tokenizerHash: string }): Promise<GeneratedData> {
  const shards = await shardList(summaryPath);
  let manifest: ExampleManifest | undefined;
  const rows: ExampleRow[] = [];
  for (const file of shards) {
    const shard = await readExampleShard(file);
    checkManifestFits(shard.manifest, student, file);
    manifest ??= shard.manifest;
    rows.push(...shard.rows);
  }
  if (!manifest) throw new DatasetError(`${summaryPath}: lists no shards; run the generate stage again`);
  return { manifest, rows };
}

/**
 * A row as a training example: prompt and response ids, with only the response as targets, and the
 * teacher's top-k at each response token (`k` of the data; 0: text only).
 */
export function rowExample(row: ExampleRow, index: number, k: number): SourcedExample {
  const ids = [...row.promptIds, ...row.responseIds];
  const lossMask = ids.map((_, i) => (i >= row.promptIds.length ? 1 : 0));
  const example: TextExample = { ids, lossMask };
  if (k > 0) {
    const start = row.promptIds.length * k;
    const softLabels = { k, ids: new Int32Array(ids.length * k), logprobs: new Float32Array(ids.length * k).fill(-Infinity) };
    if (row.softLabels) {
      softLabels.ids.set(row.softLabels.ids, start);
      softLabels.logprobs.set(row.softLabels.logprobs, start);
    }
    example.softLabels = softLabels;
  }
  return { source: `generated example ${index}`, key: row.requestKey, example };
}

async function shardList(summaryPath: string): Promise<string[]> {
  const summary = await readJsonFile(summaryPath, (problem, detail) =>
    problem === 'invalid' ? new DatasetError(`${summaryPath}: ${detail}`) : new DatasetError(`${summaryPath}: no generated data (${detail}); run the generate stage first`),
  );
  const shards = (summary as { shards?: unknown } | null)?.shards;
  if (!Array.isArray(shards) || !shards.every((s) => typeof s === 'string')) {
    throw new DatasetError(`${summaryPath}: key "shards" must be a list of shard paths`);
  }
  return shards;
}
