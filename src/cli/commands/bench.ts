import type { Command } from 'commander';
import type { Backend } from '../../recipe/index.ts';
import type { CliIo, CommandContext } from '../io.ts';
import { backendOption, integerArg } from '../options.ts';

export interface BenchCommandOptions {
  backend: Backend;
  steps: number;
  batchSize: number;
  seqLen: number;
  decodeTokens: number;
  json: boolean;
}

/** Training and decoding throughput of the brief's benchmark model on the chosen backend. */
export async function benchCommand(options: BenchCommandOptions, io: CliIo): Promise<number> {
  const { initBackend } = await import('../../backend/index.ts');
  const { BENCH_LORA, BENCH_MODEL, benchTraining } = await import('../../bench/training.ts');
  const { benchDecoding } = await import('../../bench/decoding.ts');
  const backend = await initBackend(options.backend);
  const log = (line: string) => options.json || io.stderr.write(`${line}\n`);
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
      '',
    ].join('\n'),
  );
  return 0;
}

export function registerBench(program: Command, { io, setExitCode }: CommandContext): void {
  program
    .command('bench')
    .description('measure training and decoding throughput and peak memory')
    .addOption(backendOption().default('auto'))
    .option('--steps <n>', 'timed training steps (after one warm-up step)', integerArg(1), 5)
    .option('--batch-size <n>', 'sequences per training step', integerArg(1), 8)
    .option('--seq-len <n>', 'tokens per sequence', integerArg(2), 256)
    .option('--decode-tokens <n>', 'tokens to decode', integerArg(2), 64)
    .option('--json', 'print the figures as one JSON object')
    .action(async (flags: Omit<BenchCommandOptions, 'json'> & { json?: boolean }) =>
      setExitCode(await benchCommand({ ...flags, json: flags.json ?? false }, io)),
    );
}
