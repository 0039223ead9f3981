/**
 * The eval stage: the recipe's suites on the trained student (final/), and on the teacher and the LoRA
 * base when the recipe asks, each into its own folder (eval/, eval/teacher/, eval/base/), so a report can
 * put them side by side. Answers are cached by model digest, so re-running is instant for unchanged models.
 */
import { evalCacheFile, evalDir, evaluate } from '../eval/evaluate.ts';
import type { SuiteResult } from '../eval/runner.ts';
import { join } from 'node:path';
import { localTarget, modelTarget, serverTarget, type EvalTarget } from '../eval/targets.ts';
import type { Recipe } from '../recipe/index.ts';
import type { Logger } from '../util/progress.ts';
import type { Student } from './student.ts';
import { CE_BASELINE_DIR, type RunPaths } from '../run/layout.ts';
import { SlmError } from '../util/errors.ts';

export type EvalTargetName = 'student' | 'teacher' | 'base' | 'ce_baseline';

export async function evalStage(recipe: Recipe, paths: RunPaths, logger: Logger): Promise<Partial<Record<EvalTargetName, SuiteResult[]>>> {
  const spec = recipe.eval;
  if (!spec) return {};
  const results: Partial<Record<EvalTargetName, SuiteResult[]>> = {};
  for (const name of spec.targets) {
    const target = await openTarget(name, recipe, paths, logger);
    try {
      results[name] = await evaluate(target, spec.suites, {
        outDir: evalDir(paths.root, name),
        cacheFile: evalCacheFile(recipe.outputDir),
        seed: recipe.seed,
        logger,
      });
    } finally {
      await target.dispose();
    }
  }
  return results;
}

/**
 * The student as it is at `step`, on each suite's first `limitDuringTraining` documents, written to
 * eval/steps/step-N/; returns each suite's primary metric for the metrics log (`eval_<suite>`).
 */
export async function evaluateDuringTraining(recipe: Recipe, paths: RunPaths, student: Student, step: number, logger: Logger): Promise<Record<string, number>> {
  const spec = recipe.eval!;
  const target = modelTarget(`${recipe.name} step ${step}`, `${recipe.name}:step-${step}`, student.model, student.tokenizer, null, {
    project: student.project,
    ownsModel: false,
  });
  student.setTraining(false);
  try {
    const results = await evaluate(target, spec.suites, {
      outDir: join(paths.root, 'eval', 'steps', `step-${String(step).padStart(8, '0')}`),
      seed: recipe.seed,
      logger,
      limit: spec.limitDuringTraining,
    });
    return Object.fromEntries(results.map((result) => [`eval_${result.suite}`, result.metrics[result.primaryMetric].value]));
  } finally {
    student.setTraining(true);
  }
}

async function openTarget(name: EvalTargetName, recipe: Recipe, paths: RunPaths, logger: Logger): Promise<EvalTarget> {
  const local = { engine: recipe.eval!.engine, logger };
  switch (name) {
    case 'student':
      return localTarget(paths.root, local);
    case 'teacher': {
      const teacher = recipe.teacher!;
      return teacher.provider === 'local' ? localTarget(teacher.model, local) : serverTarget(teacher, { logger });
    }
    case 'ce_baseline':
      return localTarget(join(paths.root, CE_BASELINE_DIR, 'final'), local);
    case 'base': {
      if (recipe.student.type === 'scratch') throw new SlmError('eval target base: a scratch student has no base', { code: 'ERR_RECIPE' });
      return localTarget(recipe.student.base, local);
    }
  }
}
