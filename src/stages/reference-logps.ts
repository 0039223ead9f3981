/**
 * The reference log-probabilities of DPO: each preference window's summed log-probability of its targets
 * under the reference model, computed once before training and cached in the run folder
 * (reference-logps.json), keyed by the reference's identity and the windows' content, so a resumed or
 * re-run training reads them back and the reference never sits in memory beside the student.
 *
 * The reference is dpo.reference when the recipe names one, else the student as training starts: a LoRA
 * student's base without its adapter (B starts at zero, so that is exact), a full student's base, a scratch
 * student's initial weights; the train stage computes them before any checkpoint is restored.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import { ValidationBatches } from '../../trainers/batches.ts';
import type { PackedWindows } from '../../trainers/packing.ts';
import { loadAdaptedModel, modelRefDigest } from '../model-files/adapted-model.ts';
import type { CausalLM } from '../model/causal-lm.ts';
import type { Projection } from '../model/layers.ts';
import type { Recipe } from '../recipe/index.ts';
import { canonicalJson } from '../util/canonical-json.ts';
import { tokenizerHash } from '../tokenizer/hash.ts';
import { writeJsonAtomic } from '../util/atomic.ts';
import { SlmError } from '../util/errors.ts';
import { nextTokenNll } from '../../trainers/losses/next-token.ts';
import { sequenceLogps } from '../../trainers/losses/preference.ts';
import type { Logger } from '../util/progress.ts';
import type { Student } from './student.ts';

type Part = 'train' | 'validation';

interface CacheFile {
  parts: Partial<Record<Part, { key: string; logps: number[] }>>;
}

/** The function loadPreferenceDataset asks for each part's reference log-probabilities. */
export function referenceLogpsSource(recipe: Recipe, cachePath: string, student: Student, logger: Logger) {
  let identity: Promise<string> | undefined;
  return async (windows: PackedWindows, part: Part): Promise<Float32Array> => {
    identity ??= referenceIdentity(recipe, student);
    const key = createHash('sha256').update(await identity).update(windowsDigest(windows)).digest('hex');
    const cache = await readCache(cachePath);
    const cached = cache.parts[part];
    if (cached?.key === key && cached.logps.length === windows.count) {
      logger.info(`reference log-probabilities of the ${part} pairs: read from ${cachePath}`);
      return Float32Array.from(cached.logps);
    }
    const started = performance.now();
    const logps = await computeWithReference(recipe, student, windows, logger, (done) => logger.info(`reference log-probabilities of the ${part} pairs: ${done}/${windows.count} sequences`));
    logger.info(`reference log-probabilities of ${windows.count / 2} ${part} pairs computed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    await writeJsonAtomic(cachePath, { parts: { ...cache.parts, [part]: { key, logps: [...logps] } } } satisfies CacheFile);
    return logps;
  };
}

async function referenceIdentity(recipe: Recipe, student: Student): Promise<string> {
  const named = recipe.dpo!.reference;
  if (named !== null) return `model:${await modelRefDigest(named)}`;
  if (recipe.student.type !== 'scratch') return `base:${await modelRefDigest(recipe.student.base)}`;
  return `initial:${canonicalJson({ student: recipe.student, seed: recipe.seed, tokenizer: tokenizerHash(student.tokenizer) })}`;
}

function windowsDigest({ seqLen, ids, mask }: PackedWindows): Uint8Array {
  const hash = createHash('sha256').update(`${seqLen}:`);
  hash.update(new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
  hash.update(mask);
  return hash.digest();
}

async function computeWithReference(recipe: Recipe, student: Student, windows: PackedWindows, logger: Logger, progress: Progress): Promise<Float32Array> {
  const rows = 2 * recipe.train.batchSize;
  const named = recipe.dpo!.reference;
  // The student's own model with its plain projections: a LoRA base without the adapter, or the initial weights.
  if (named === null) return sequenceSums(student.model, student.model.project, windows, rows, progress);
  const reference = await loadAdaptedModel(named, { logger });
  try {
    if (!reference.tokenizer || tokenizerHash(reference.tokenizer) !== tokenizerHash(student.tokenizer)) {
      throw new SlmError(`dpo.reference: ${named} does not share the student's tokenizer, so it cannot score the student's token ids`, { code: 'ERR_RECIPE' });
    }
    return await sequenceSums(reference.model, reference.project, windows, rows, progress);
  } finally {
    reference.dispose();
  }
}

/** Sequences done so far; called at each tenth of the work, as a real-size reference pass takes a while. */
type Progress = (done: number) => void;

/** Each window's summed log-probability of its targets, `rows` windows at a time. */
async function sequenceSums(model: CausalLM, project: Projection, windows: PackedWindows, rows: number, progress: Progress): Promise<Float32Array> {
  const out = new Float32Array(windows.count);
  const batches = new ValidationBatches({ ...windows, pairs: false, referenceLogps: undefined }, rows);
  let [filled, reported, index] = [0, 0, 0];
  for (const batch of batches.batches()) {
    const sums = tf.tidy(() => sequenceLogps(nextTokenNll(model, batch, project), tf.tensor1d(batch.mask), batch.batchSize, false));
    out.set(await sums.data(), filled);
    sums.dispose();
    filled += batch.batchSize;
    const tenth = Math.floor((10 * ++index) / batches.batchCount);
    if (tenth > reported) {
      reported = tenth;
      progress(filled);
    }
  }
  return out;
}

/** The cache as written; empty when there is none yet or it is damaged (then it is computed again and replaced). */
async function readCache(path: string): Promise<CacheFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { parts: {} };
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as CacheFile;
    return parsed && typeof parsed.parts === 'object' ? parsed : { parts: {} };
  } catch {
    return { parts: {} };
  }
}
