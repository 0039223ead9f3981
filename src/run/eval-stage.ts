/**
 * The eval stage: the recipe's suites on the trained student (final/), and on the teacher and the LoRA
 * base when the recipe asks, each into its own folder (eval/, eval/teacher/, eval/base/), so a report can
 * put them side by side. Answers are cached by model digest, so re-running is instant for unchanged models.
 */
import { evalCacheFile, evalDir, evaluate } from '../eval/evaluate.ts';
import type { SuiteResult } from '../eval/runner.ts';
import { localTarget, serverTarget, type EvalTarget } from '../eval/targets.ts';
import type { Recipe } from '../recipe/index.ts';
import type { RunPaths } from './layout.ts';
import type { Logger } from './progress.ts';
import { SlmError } from '../util/errors.ts';

export type EvalTargetName = 'student' | 'teacher' | 'base';

export async function evalStage(recipe: Recipe, paths: RunPaths, logger: Logger): Promise<Partial<Record<EvalTargetName, SuiteResult[]>>> {
  const spec = recipe.eval;
  if (!spec) return {};
  const results: Partial<Record<EvalTargetName, SuiteResult[]>> = {};
  for (const name of spec.targets) {
    const target = await openTarget(name, recipe, paths);
    try {
      results[name] = await evaluate(target, spec.suites, {
        outDir: evalDir(paths.root, name),
        cacheFile: evalCacheFile(recipe.outputDir),
        seed: recipe.seed,
        logger,
      });
    } finally {
      target.dispose();
    }
  }
  return results;
}

async function openTarget(name: EvalTargetName, recipe: Recipe, paths: RunPaths): Promise<EvalTarget> {
  switch (name) {
    case 'student':
      return localTarget(paths.root);
    case 'teacher': {
      const teacher = recipe.teacher!;
      return teacher.provider === 'local' ? localTarget(teacher.model) : serverTarget(teacher);
    }
    case 'base': {
      if (recipe.student.type !== 'lora') throw new SlmError('eval target base: a scratch student has no base', { code: 'ERR_RECIPE' });
      return localTarget(recipe.student.base);
    }
  }
}
