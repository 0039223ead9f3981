/**
 * What a run's student learns from: the training objective chosen from the recipe's `distill` section and
 * the data, and the reason, so a run says which kind of distillation it did.
 *
 *   stored     top-k soft labels from the generated data
 *   online     a local teacher's full distribution, computed on every batch
 *   sequence   cross-entropy on the teacher's text (no usable soft labels)
 *   none       plain cross-entropy: the recipe has no `distill` section
 */
import type { ExampleManifest } from '../formats/arrow-examples.ts';
import { loadAdaptedModel, type AdaptedModel } from '../model-files/adapted-model.ts';
import type { Recipe } from '../recipe/index.ts';
import { tokenizerHash } from '../tokenizer/hash.ts';
import { SlmError } from '../util/errors.ts';
import { distillationObjective } from '../../trainers/losses/distillation-objective.ts';
import { nextTokenLoss } from '../../trainers/losses/next-token.ts';
import { preferenceObjective } from '../../trainers/losses/preference-objective.ts';
import type { LossFn } from '../../trainers/loop.ts';
import type { Logger } from '../util/progress.ts';
import type { Student } from './student.ts';

export type DistillationMode = 'stored' | 'online' | 'sequence' | 'none';

export interface Objective {
  loss: LossFn;
  mode: DistillationMode;
  reason: string;
  /** The online teacher (a model, or a LoRA run or adapter on its base), when one was loaded. */
  teacher: AdaptedModel | null;
  dispose(): void;
}

export async function buildObjective(recipe: Recipe, student: Student, manifest: ExampleManifest | null, logger: Logger): Promise<Objective> {
  if (recipe.train.objective === 'dpo') return dpoObjective(recipe, student, logger);
  const { mode, reason } = chooseMode(recipe, manifest);
  const teacher = mode === 'online' || (recipe.distill?.onPolicy.lambda ?? 0) > 0 ? await loadOnlineTeacher(recipe, student, logger) : null;
  if (mode === 'online' && !teacher && recipe.distill?.labels === 'online') {
    throw new SlmError(`distill.labels online: the teacher ${recipe.teacher!.model} and the student have different tokenizers, so their distributions cannot be compared id by id; use labels: sequence, or a student with the teacher's tokenizer`, { code: 'ERR_RECIPE' });
  }
  const settled = mode === 'online' && !teacher ? { mode: 'sequence' as const, reason: 'the local teacher does not share the student\'s tokenizer' } : { mode, reason };
  logger.info(`distillation: ${settled.mode} (${settled.reason})`);
  const distill = recipe.distill;
  const loss: LossFn =
    !distill || settled.mode === 'none'
      ? (batch) => nextTokenLoss(student.model, batch, student.project)
      : distillationObjective(student.model, student.project, {
          alpha: settled.mode === 'sequence' ? 0 : distill.alpha,
          temperature: distill.temperature,
          divergence: distill.divergence,
          beta: distill.beta,
          tail: distill.tail ?? manifest?.tail ?? 'bucket',
          storedTemperature: manifest?.temperature ?? 1,
          // Also for stored labels when on-policy batches (which have none) are mixed in.
          online: teacher ? { model: teacher.model, project: teacher.project, rowsPerChunk: distill.rowsPerChunk, vocabPerChunk: distill.vocabPerChunk } : undefined,
        });
  return { loss, ...settled, teacher, dispose: () => teacher?.dispose() };
}

/** Preference tuning: no teacher distributions, the DPO loss against the cached reference log-probabilities. */
function dpoObjective(recipe: Recipe, student: Student, logger: Logger): Objective {
  const { loss, beta, labelSmoothing, rpoAlpha, reference } = recipe.dpo!; // resolve.ts fills it in for train.objective dpo
  const against = reference ?? { lora: 'the base without the adapter', full: 'the base as it was loaded', scratch: 'the initial student' }[recipe.student.type];
  const reason = `train.objective dpo: ${loss} loss, beta ${beta}${rpoAlpha === null ? '' : `, RPO alpha ${rpoAlpha}`}, against ${against}`;
  logger.info(reason);
  return { loss: preferenceObjective(student.model, student.project, { loss, beta, labelSmoothing, rpoAlpha }), mode: 'none', reason, teacher: null, dispose: () => {} };
}

function chooseMode(recipe: Recipe, manifest: ExampleManifest | null): { mode: DistillationMode; reason: string } {
  const distill = recipe.distill;
  if (!distill) return { mode: 'none', reason: manifest && manifest.k > 0 ? 'no `distill` section: the soft labels are not used' : 'no `distill` section' };
  const stored = manifest !== null && manifest.k > 0;
  const local = recipe.teacher?.provider === 'local';
  switch (distill.labels) {
    case 'stored':
      return { mode: 'stored', reason: `top-${manifest?.k} soft labels from the generated data` };
    case 'online':
      return { mode: 'online', reason: 'the local teacher\'s full distribution at every step' };
    case 'sequence':
      return { mode: 'sequence', reason: 'cross-entropy on the teacher\'s text, as the recipe asks' };
    case 'auto':
      if (stored) return { mode: 'stored', reason: `top-${manifest.k} soft labels from the generated data` };
      if (local) return { mode: 'online', reason: 'no stored soft labels; the local teacher\'s full distribution at every step' };
      return { mode: 'sequence', reason: manifest ? 'the data has no soft labels: cross-entropy on the teacher\'s text' : 'no teacher distributions: cross-entropy on the data' };
  }
}

/** The local teacher, when its token ids are the student's; null (and a warning) when they are not. */
async function loadOnlineTeacher(recipe: Recipe, student: Student, logger: Logger): Promise<AdaptedModel | null> {
  const ref = recipe.teacher!.model;
  const teacher = await loadAdaptedModel(ref, { logger });
  if (!teacher.tokenizer || tokenizerHash(teacher.tokenizer) !== tokenizerHash(student.tokenizer)) {
    teacher.dispose();
    logger.warn(`teacher ${ref}: its tokenizer differs from the student's, so its distributions cannot be compared id by id`);
    return null;
  }
  for (const variable of [...teacher.model.params.values(), ...(teacher.project.variables?.values() ?? [])]) variable.trainable = false;
  return teacher;
}
