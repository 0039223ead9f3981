/**
 * Evaluation of one target on a list of suites: builds each suite from its data, runs it through the
 * answer cache, and writes `<outDir>/<suite>.json`, the per-sample JSONL and summary.md.
 */
import { join } from 'node:path';
import { compileChatTemplate } from '../../datasets/chat-template.ts';
import { readGsm8k } from '../../datasets/gsm8k.ts';
import { readMmlu } from '../../datasets/mmlu.ts';
import type { EvalSuiteSpec } from '../recipe/index.ts';
import { ResponseCache } from '../run/response-cache.ts';
import type { Logger } from '../util/progress.ts';
import { SlmError } from '../util/errors.ts';
import { writeSuiteResult } from './report.ts';
import { runSuite, type SuiteResult } from './runner.ts';
import type { EvalResponse, Suite } from './suite.ts';
import { loadCustomSuite } from './suites/custom.ts';
import { gsm8kSuite } from './suites/gsm8k.ts';
import { mmluSuite } from './suites/mmlu.ts';
import type { EvalTarget } from './targets.ts';

export interface EvaluateOptions {
  outDir: string;
  /** The answer cache (JSONL), shared by every target: answers are keyed by model digest and request. None: no cache. */
  cacheFile?: string;
  seed: number;
  logger: Logger;
  /** Overrides every suite's limit (evaluations during training use a small one). */
  limit?: number;
}

export async function evaluate(target: EvalTarget, specs: readonly EvalSuiteSpec[], options: EvaluateOptions): Promise<SuiteResult[]> {
  const cache = options.cacheFile === undefined ? undefined : await ResponseCache.open<EvalResponse>(options.cacheFile);
  for (const line of cache?.skippedLines ?? []) options.logger.warn(`eval: ${line}; its request will be answered again`);
  const results: SuiteResult[] = [];
  for (const spec of specs) {
    const suite = await buildSuite({ ...spec, limit: options.limit ?? spec.limit }, target, options.seed);
    options.logger.info(`eval ${target.name}: ${suite.name} (${suite.promptStyle}, ${suite.documents.length} documents)`);
    const { result, samples } = await runSuite(suite, target, {
      cache,
      onProgress: (done, total) => done % 40 === 0 && options.logger.info(`eval ${suite.name}: ${done}/${total}`),
    });
    await writeSuiteResult(options.outDir, result, samples);
    const primary = result.metrics[result.primaryMetric];
    options.logger.info(
      `eval ${target.name}: ${suite.name} ${result.primaryMetric} = ${(primary.value * 100).toFixed(2)} ± ${(primary.stderr * 100).toFixed(2)} (n ${result.n}, ${result.cached} cached)`,
    );
    results.push(result);
  }
  return results;
}

export async function buildSuite(spec: EvalSuiteSpec, target: EvalTarget, seed: number): Promise<Suite> {
  switch (spec.suite) {
    case 'gsm8k': {
      const data = await readGsm8k(required(spec.data, 'gsm8k', 'data'));
      const fewshotPool = spec.fewshotData ? await readGsm8k(spec.fewshotData) : undefined;
      const chatTemplate = target.chatTemplate ? compileChatTemplate(target.chatTemplate) : undefined;
      return gsm8kSuite({
        data,
        fewshotPool,
        poolIsEvaluatedSplit: spec.fewshotData !== undefined && spec.fewshotData === spec.data,
        style: spec.style ?? '5-shot',
        shots: spec.shots,
        seed,
        limit: spec.limit ?? undefined,
        chatTemplate: chatTemplate && ((messages) => chatTemplate(messages, { addGenerationPrompt: true })),
      });
    }
    case 'mmlu': {
      const path = required(spec.data, 'mmlu', 'data');
      const [test, dev] = await Promise.all([readMmlu(path, { split: 'test' }), readMmlu(path, { split: 'dev' })]);
      return mmluSuite({ test, dev, shots: spec.shots, mode: spec.mode ?? (target.loglikelihood ? 'loglikelihood' : 'generate'), seed, limit: spec.limit ?? undefined });
    }
    case 'custom':
      return loadCustomSuite(required(spec.path, 'custom', 'path'), { seed, limit: spec.limit ?? undefined });
  }
}

function required(value: string | undefined, suite: string, key: string): string {
  if (value === undefined) throw new SlmError(`eval suite ${suite}: needs \`${key}\``, { code: 'ERR_EVAL' });
  return value;
}

/** Where a run's evaluations go: the student's in eval/, other targets' in eval/<target>/ (ce_baseline: eval/ce-baseline/). */
export function evalDir(runDir: string, target: 'student' | 'teacher' | 'base' | 'ce_baseline'): string {
  return target === 'student' ? join(runDir, 'eval') : join(runDir, 'eval', target.replace('_', '-'));
}

/** One answer cache for all evaluations under an output folder (runs/.eval-cache/answers.jsonl). */
export function evalCacheFile(outputDir: string): string {
  return join(outputDir, '.eval-cache', 'answers.jsonl');
}

