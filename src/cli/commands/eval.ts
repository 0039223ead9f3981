import { basename, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import type { ServedApi } from '../../eval/targets.ts';
import type { Backend, EvalSuiteSpec } from '../../recipe/index.ts';
import { streamLogger } from '../../util/progress.ts';
import { pathExists } from '../../util/path-exists.ts';
import { UsageError } from '../errors.ts';
import type { CliIo, CommandContext } from '../io.ts';
import type { GenerationEngine } from '../../eval/llama-cpp-engine.ts';
import { backendOption, integerArg } from '../options.ts';
import { modelWorkload } from '../model-target.ts';

export interface EvalCommandOptions {
  model: string;
  /** Evaluate a model served by Ollama or an OpenAI-compatible server instead of loading it. */
  provider?: 'ollama' | 'openai';
  /** How a served model is prompted [completions]. */
  api?: ServedApi;
  /** Reuse a served model's cached answers by endpoint and name when the server gives no identity. */
  cacheByName?: boolean;
  /** What decodes a local model's generation [tfjs]. */
  engine?: GenerationEngine;
  endpoint?: string[];
  apiKeyEnv?: string;
  suite: string;
  data?: string;
  fewshotData?: string;
  style?: EvalSuiteSpec['style'];
  mode?: EvalSuiteSpec['mode'];
  shots?: number;
  limit?: number;
  seed: number;
  out?: string;
  /** The answer cache's folder [runs/.eval-cache]. */
  cacheDir?: string;
  backend: Backend;
  json: boolean;
}

export async function evalCommand(options: EvalCommandOptions, io: CliIo): Promise<number> {
  const { initBackend } = await import('../../backend/index.ts');
  const { evaluate, evalCacheFile } = await import('../../eval/evaluate.ts');
  const { localTarget, serverTarget } = await import('../../eval/targets.ts');
  const logger = streamLogger(io.stderr);
  const spec = suiteSpec(options);
  const outDir = options.out ?? (await defaultOutDir(options));
  // Generation suites decode one token at a time: the thread count that decodes fastest.
  await initBackend(options.backend, { workload: options.provider ? 'decoding' : await modelWorkload(options.model, 'decoding') });
  const target = options.provider
    ? await serverTarget({
        provider: options.provider,
        model: options.model,
        endpoints: options.endpoint,
        apiKeyEnv: options.apiKeyEnv,
        concurrency: 4,
        requestsPerMinute: null,
        timeoutS: 300,
        maxRetries: 4,
      }, { api: options.api, cacheByName: options.cacheByName, logger })
    : await localTarget(options.model, { engine: options.engine, logger });
  try {
    const cacheFile = options.cacheDir ? join(resolve(options.cacheDir), 'answers.jsonl') : evalCacheFile(resolve('runs'));
    const results = await evaluate(target, [spec], { outDir, cacheFile, seed: options.seed, logger });
    if (options.json) {
      io.stdout.write(`${JSON.stringify({ outDir, results })}\n`);
      return 0;
    }
    for (const result of results) {
      for (const [name, metric] of Object.entries(result.metrics)) {
        io.stdout.write(`${result.suite} ${name}: ${(metric.value * 100).toFixed(2)} ± ${(metric.stderr * 100).toFixed(2)} (n ${metric.n})\n`);
      }
    }
    io.stdout.write(`wrote ${outDir}\n`);
    return 0;
  } finally {
    await target.dispose();
  }
}

function suiteSpec(options: EvalCommandOptions): EvalSuiteSpec {
  const common = { style: options.style, mode: options.mode, shots: options.shots, limit: options.limit ?? null };
  if (options.suite === 'gsm8k' || options.suite === 'mmlu') {
    if (!options.data) throw new UsageError(`--suite ${options.suite} needs --data`);
    return { suite: options.suite, data: resolve(options.data), ...(options.fewshotData && { fewshotData: resolve(options.fewshotData) }), ...common };
  }
  if (!/\.ya?ml$/.test(options.suite)) throw new UsageError(`--suite: expected gsm8k, mmlu or a custom suite's .yaml file, got "${options.suite}"`);
  return { suite: 'custom', path: resolve(options.suite), ...common };
}

/** A run folder's eval/; otherwise runs/eval/<model name>. */
async function defaultOutDir(options: EvalCommandOptions): Promise<string> {
  if (!options.provider && (await pathExists(join(options.model, 'recipe.yaml')))) return join(options.model, 'eval');
  return resolve('runs', 'eval', basename(options.model).replace(/[^A-Za-z0-9._-]+/g, '_'));
}

export function registerEval(program: Command, { io, setExitCode }: CommandContext): void {
  program
    .command('eval')
    .description('evaluate a model on gsm8k, mmlu or a custom suite; writes <suite>.json, per-sample JSONL and summary.md')
    .requiredOption('--model <ref>', 'a run folder, a Hugging Face folder, a PEFT adapter folder, a .gguf, ollama:NAME; with --provider, the served model name')
    .addOption(new Option('--provider <name>', 'evaluate a model served by Ollama or an OpenAI-compatible server').choices(['ollama', 'openai']))
    .addOption(new Option('--api <api>', 'with --provider: the prompt as raw text (/v1/completions, as the harness does) or as a chat turn').choices(['completions', 'chat']).default('completions'))
    .option('--cache-by-name', 'with --provider: reuse cached answers by endpoint and model name even when the server gives no model identity')
    .addOption(
      new Option('--engine <engine>', 'a local model\'s generation: our tfjs decoding, or real llama.cpp (node-llama-cpp) on its F32 GGUF export where its log-probabilities match ours within 1e-4 nats (auto: when installed and exact)')
        .choices(['auto', 'tfjs', 'llama.cpp'] satisfies GenerationEngine[])
        .default('tfjs'),
    )
    .option('--endpoint <url...>', 'server base URL(s) for --provider')
    .option('--api-key-env <name>', 'environment variable holding the API key (openai)')
    .requiredOption('--suite <name>', 'gsm8k, mmlu, or a custom suite .yaml')
    .option('--data <path>', 'gsm8k: test JSONL; mmlu: folder or file')
    .option('--fewshot-data <path>', 'gsm8k: problems to draw shots from (train split)')
    .addOption(new Option('--style <style>', 'gsm8k prompt style').choices(['5-shot', 'cot-8-shot', 'zero-shot', 'chat']))
    .addOption(new Option('--mode <mode>', 'mmlu: score the choices or generate a letter').choices(['loglikelihood', 'generate']))
    .option('--shots <n>', 'few-shot examples', integerArg(0))
    .option('--limit <n>', 'documents to evaluate (mmlu: per subject)', integerArg(1))
    .option('--seed <n>', 'seed of the few-shot selection', integerArg(0), 1234)
    .option('--out <dir>', 'output folder [<run>/eval, or runs/eval/<model>]')
    .option('--cache-dir <dir>', 'where answers are cached by model digest and prompt [runs/.eval-cache]')
    .addOption(backendOption().default('auto'))
    .option('--json', 'print the results as JSON')
    .action(async (flags: Omit<EvalCommandOptions, 'json'> & { json?: boolean }) => setExitCode(await evalCommand({ ...flags, json: flags.json ?? false }, io)));
}
