/**
 * What a checkpoint was trained under, so a resume under other settings is caught: every recipe value that
 * changes what the next step computes (model, data, optimizer, schedule, loss, seed). Left out are those a
 * user changes on purpose between attempts: where to stop (max_steps), how often to checkpoint, validate or
 * log, how many checkpoints to keep, and the backend.
 */
import type { Recipe } from '../recipe/index.ts';

const FREE_TRAIN_KEYS = new Set(['maxSteps', 'epochs', 'checkpointEvery', 'keepCheckpoints', 'evalEvery', 'evalBatches', 'logEvery', 'resume', 'recompute']);

/** Settings added after checkpoints began recording them, left out at their default so that older checkpoints still resume. */
const LATER_DEFAULTS: Record<string, string> = { 'train.objective': '"sft"' };

/** The settings as flat `section.key` -> JSON text, stored in each checkpoint's trainer state. */
export function resumeSettings(recipe: Recipe): Record<string, string> {
  const train = Object.fromEntries(Object.entries(recipe.train).filter(([key]) => !FREE_TRAIN_KEYS.has(key)));
  const settings = flatten({ seed: recipe.seed, student: recipe.student, data: recipe.data, train, distill: recipe.distill ?? null, ...(recipe.dpo && { dpo: recipe.dpo }) });
  return Object.fromEntries(Object.entries(settings).filter(([key, value]) => LATER_DEFAULTS[key] !== value));
}

/** `key: saved -> now` for each setting that differs (a key on one side only counts as changed). */
export function changedSettings(saved: Record<string, string>, now: Record<string, string>): string[] {
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(now)])].sort();
  return keys.filter((key) => saved[key] !== now[key]).map((key) => `${key}: ${saved[key] ?? '(unset)'} -> ${now[key] ?? '(unset)'}`);
}

function flatten(value: unknown, prefix = '', into: Record<string, string> = {}): Record<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, into);
    return into;
  }
  if (value !== undefined) into[prefix] = JSON.stringify(value);
  return into;
}
