import type { Command } from 'commander';
import type { LabelingBenchResult } from '../../bench/labeling.ts';
import type { Backend } from '../../recipe/index.ts';
import type { CliIo, CommandContext } from '../io.ts';
import { backendOption, integerArg } from '../options.ts';

export interface BenchCommandOptions {
  backend: Backend;
  steps: number;
  batchSize: number;
  seqLen: number;
  decodeTokens: number;
  labelRequests: number;
  labelConcurrency: number;
  labelDelayMs: number;
  json: boolean;
}

/**
 * Teacher labeling overhead against a loopback server, then training and decoding throughput of the brief's
 * benchmark model on the chosen backend.
 */
export async function benchCommand(options: BenchCommandOptions, io: CliIo): Promise<number> {
  const { BENCH_LABELING_ANSWER, benchLabeling } = await import('../../bench/labeling.ts');
  const { initBackend } = await import('../../backend/index.ts');
  const { BENCH_LORA, BENCH_MODEL, benchTraining } = await import('../../bench/training.ts');
  const { benchDecoding } = await import('../../bench/decoding.ts');
  const log = (line: string) => options.json || io.stderr.write(`${line}\n`);
  const { labelRequests: requests, labelConcurrency: concurrency, labelDelayMs: delayMs } = options;
  log(`labeling ${requests} requests through the openai and ollama teachers (loopback, ${delayMs} ms delay, concurrency ${concurrency})...`);
  const labelingShape = { requests, concurrency, delayMs, ...BENCH_LABELING_ANSWER };
  const labeling = {
    openai: await benchLabeling({ provider: 'openai', ...labelingShape }),
    ollama: await benchLabeling({ provider: 'ollama', ...labelingShape }),
  };
  const backend = await initBackend(options.backend);
  log(`backend: ${backend.summary}`);
  log(`training ${options.steps} steps of batch ${options.batchSize} x ${options.seqLen} tokens...`);
  const shape = { config: BENCH_MODEL, batchSize: options.batchSize, seqLen: options.seqLen, warmupSteps: 1, steps: options.steps };
  const training = await benchTraining(shape);
  log(`LoRA training (rank ${BENCH_LORA.rank} on ${BENCH_LORA.targets.join(', ')}, base frozen)...`);
  const lora = await benchTraining({ ...shape, lora: BENCH_LORA });
  log(`decoding ${options.decodeTokens} tokens...`);
  const decoding = await benchDecoding(BENCH_MODEL, 32, options.decodeTokens);
  const result = {
    backend: backend.backend,
    threads: backend.threads,
    model: { ...BENCH_MODEL, parameters: training.parameters },
    training,
    lora: { ...lora, config: BENCH_LORA },
    decoding,
    labeling,
  };
  if (options.json) {
    io.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  }
  io.stdout.write(
    [
      `model: ${(training.parameters / 1e6).toFixed(2)}M parameters (${BENCH_MODEL.numLayers} layers, hidden ${BENCH_MODEL.hiddenSize}, ` +
        `heads ${BENCH_MODEL.numHeads}/${BENCH_MODEL.numKvHeads} kv, vocabulary ${BENCH_MODEL.vocabSize}); backend ${backend.backend}, ${backend.threads} thread(s)`,
      `training: ${training.tokensPerSecond.toFixed(0)} tokens/s (${training.secondsPerStep.toFixed(2)} s/step, batch ${training.batchSize} x ${training.seqLen}, AdamW)`,
      `LoRA training: ${lora.tokensPerSecond.toFixed(0)} tokens/s (rank ${BENCH_LORA.rank}, ${lora.trainableParameters.toLocaleString('en')} trainable parameters), peak ${lora.peakTensorMiB} MiB in tensors`,
      `decoding: ${decoding.tokensPerSecond.toFixed(1)} tokens/s (greedy, KV cache, prompt ${decoding.promptTokens}, prefill ${decoding.prefillSeconds.toFixed(2)} s)`,
      `peak memory (full training): ${training.peakRssMiB} MiB resident, ${training.peakTensorMiB} MiB in tensors`,
      ...Object.values(labeling).map(labelingLine),
      '',
    ].join('\n'),
  );
  return 0;
}

function labelingLine(result: LabelingBenchResult): string {
  const { provider, delayMs, concurrency, tokensPerResponse, topLogprobs } = result;
  return (
    `labeling (${provider}, loopback, ${delayMs} ms delay, concurrency ${concurrency}): ` +
    `${result.requestsPerSecond.toFixed(0)} requests/s of ideal ${result.idealRequestsPerSecond.toFixed(0)} (${(result.efficiency * 100).toFixed(0)}%), ` +
    `${Math.round(result.tokensPerSecond).toLocaleString('en')} tokens/s (${tokensPerResponse} tokens x top ${topLogprobs} each)`
  );
}

export function registerBench(program: Command, { io, setExitCode }: CommandContext): void {
  program
    .command('bench')
    .description('measure teacher labeling overhead, training and decoding throughput, and peak memory')
    .addOption(backendOption().default('auto'))
    .option('--steps <n>', 'timed training steps (after one warm-up step)', integerArg(1), 5)
    .option('--batch-size <n>', 'sequences per training step', integerArg(1), 8)
    .option('--seq-len <n>', 'tokens per sequence', integerArg(2), 256)
    .option('--decode-tokens <n>', 'tokens to decode', integerArg(2), 64)
    .option('--label-requests <n>', 'timed teacher requests per provider', integerArg(1), 200)
    .option('--label-concurrency <n>', 'teacher requests in flight at once', integerArg(1), 8)
    .option('--label-delay-ms <n>', 'how long the loopback teacher server holds each request', integerArg(1), 50)
    .option('--json', 'print the figures as one JSON object')
    .action(async (flags: Omit<BenchCommandOptions, 'json'> & { json?: boolean }) =>
      setExitCode(await benchCommand({ ...flags, json: flags.json ?? false }, io)),
    );
}
