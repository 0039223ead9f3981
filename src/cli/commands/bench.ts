import { Option, type Command } from 'commander';
import { MODEL_SHAPES, type ModelShape } from '../../bench/model-shapes.ts';
import { WEIGHT_RESIDENCIES, type WeightResidency } from '../../model/residency.ts';
import type { AttentionProductsResult } from '../../bench/attention-products.ts';
import type { ChunkedLossMemoryResult, DistillationBenchResult } from '../../bench/distillation.ts';
import type { EvaluationBenchResult } from '../../bench/evaluation.ts';
import type { LabelingBenchResult } from '../../bench/labeling.ts';
import type { QuantizationBenchResult } from '../../bench/quantization.ts';
import type { TensorPeak } from '../../bench/tensor-peak.ts';
import type { Backend } from '../../recipe/index.ts';
import type { CliIo, CommandContext } from '../io.ts';
import { backendOption, integerArg } from '../options.ts';

export interface BenchCommandOptions {
  backend: Backend;
  steps: number;
  /** Timed steps per distillation mode; --steps when not given. */
  distillSteps?: number;
  batchSize: number;
  seqLen: number;
  decodeTokens: number;
  labelRequests: number;
  labelConcurrency: number;
  labelDelayMs: number;
  /** Questions per evaluation suite (GSM8K zero-shot generation, MMLU 1-shot log-likelihood). */
  evalQuestions: number;
  json: boolean;
}

/** Soft labels per position in the top-k distillation case: the most the teacher APIs return. */
const BENCH_TOP_K = 20;

/** The full-vocabulary loss whose memory is compared chunked and unchunked: 512 positions of a 32k vocabulary. */
const BENCH_LOSS_SHAPE = { rows: 512, hidden: 64, vocab: 32_000 };
/** Wider vocabularies (Llama 3's 128k, Qwen's 150k) whose chunked peak should stay flat beyond the head gradient. */
const BENCH_LOSS_WIDER_VOCABULARIES = [64_000, 150_000];

/** Published shapes whose attention products are timed beside the benchmark model's, one 512-token sequence each. */
const ATTENTION_PRODUCT_SHAPES: ModelShape[] = ['qwen2.5-0.5b', 'llama3.2-1b', 'llama3.2-3b'];

/**
 * Teacher labeling overhead against a loopback server, then training, decoding and distillation throughput
 * of the brief's benchmark model on the chosen backend, evaluation throughput (with the byte-level
 * vocabulary), and the memory of the chunked full-vocabulary loss.
 */
export async function benchCommand(options: BenchCommandOptions, io: CliIo): Promise<number> {
  const { BENCH_LABELING_ANSWER, benchLabeling } = await import('../../bench/labeling.ts');
  const { initBackend } = await import('../../backend/index.ts');
  const { BENCH_LORA, BENCH_MODEL, benchTraining } = await import('../../bench/training.ts');
  const { benchDecodingPhase } = await import('../../bench/decoding.ts');
  const { BENCH_EVAL_DEFAULTS, benchEvaluation } = await import('../../bench/evaluation.ts');
  const { benchChunkedLossMemory, benchDistillation } = await import('../../bench/distillation.ts');
  const { benchQuantization } = await import('../../bench/quantization.ts');
  const { benchAttentionProducts } = await import('../../bench/attention-products.ts');
  const { shapeConfig } = await import('../../bench/model-shapes.ts');
  const { readThreadCalibration } = await import('../../backend/thread-choice.ts');
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
  log(`attention's batched products against a linear layer's: the benchmark model, then ${ATTENTION_PRODUCT_SHAPES.join(', ')} at 1 x ${REAL_SIZE_SEQ_LEN} tokens...`);
  const attentionProducts = [
    benchAttentionProducts({ name: 'benchmark model', config: BENCH_MODEL, batchSize: options.batchSize, seqLen: options.seqLen }),
    ...ATTENTION_PRODUCT_SHAPES.map((name) => benchAttentionProducts({ name, config: shapeConfig(name), batchSize: 1, seqLen: REAL_SIZE_SEQ_LEN })),
  ];
  log(`decoding ${options.decodeTokens} tokens, and the same in llama.cpp (F32 GGUF, F32 KV cache), on the threads chosen for decoding...`);
  const decoding = await benchDecodingPhase(32, options.decodeTokens);
  const { maxTokens } = BENCH_EVAL_DEFAULTS;
  log(`evaluation: ${options.evalQuestions} GSM8K questions (up to ${maxTokens} new tokens each) and ${options.evalQuestions} MMLU questions, no answer cache...`);
  const evaluation = await benchEvaluation({ questions: options.evalQuestions, maxTokens });
  const distillSteps = options.distillSteps ?? options.steps;
  log(`distillation: ${distillSteps} steps each of CE, top-${BENCH_TOP_K} soft labels and a full-vocabulary teacher...`);
  const distillation = await benchDistillation({ batchSize: options.batchSize, seqLen: options.seqLen, steps: distillSteps, k: BENCH_TOP_K });
  log('chunked against unchunked full-vocabulary KD loss, and the chunked peak at 64k and 150k entries...');
  const chunkedLossMemory = await benchChunkedLossMemory(BENCH_LOSS_SHAPE);
  const chunkedLossPeaks = [chunkedLossMemory];
  for (const vocab of BENCH_LOSS_WIDER_VOCABULARIES) chunkedLossPeaks.push(await benchChunkedLossMemory({ ...BENCH_LOSS_SHAPE, vocab, unchunked: false }));
  log('GGUF export types against the float32 model...');
  const quantization = await benchQuantization();
  const result = {
    backend: backend.backend,
    threads: backend.threads,
    /** Where the count came from, and the machine's calibration when there is one (bench --calibrate-threads). */
    threadSource: backend.threadSource,
    threadCalibration: readThreadCalibration() ?? null,
    model: { ...BENCH_MODEL, parameters: training.parameters },
    training,
    lora: { ...lora, config: BENCH_LORA },
    attentionProducts,
    decoding,
    evaluation,
    distillation,
    chunkedLossMemory,
    chunkedLossPeaks: chunkedLossPeaks.map(({ vocab, chunked }) => ({ vocab, peak: chunked.peak })),
    quantization,
    labeling,
  };
  if (options.json) {
    io.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  }
  io.stdout.write(
    [
      `model: ${(training.parameters / 1e6).toFixed(2)}M parameters (${BENCH_MODEL.numLayers} layers, hidden ${BENCH_MODEL.hiddenSize}, ` +
        `heads ${BENCH_MODEL.numHeads}/${BENCH_MODEL.numKvHeads} kv, vocabulary ${BENCH_MODEL.vocabSize}); backend ${backend.backend}, ${backend.threads} thread(s) (${backend.threadSource})`,
      `training: ${training.tokensPerSecond.toFixed(0)} tokens/s (${training.secondsPerStep.toFixed(2)} s/step, batch ${training.batchSize} x ${training.seqLen}, AdamW)`,
      `LoRA training: ${lora.tokensPerSecond.toFixed(0)} tokens/s (rank ${BENCH_LORA.rank}, ${lora.trainableParameters.toLocaleString('en')} trainable parameters), peak ${lora.peakTensorMiB} MiB in tensors`,
      ...attentionProducts.map(attentionProductsLine),
      `decoding on ${decoding.threads} thread(s) (${decoding.threadSource}): ${decoding.tokensPerSecond.toFixed(1)} tokens/s (greedy, KV cache, prompt ${decoding.promptTokens}, prefill ${decoding.prefillSeconds.toFixed(2)} s); ` +
        ('skipped' in decoding.llamaCpp
          ? `llama.cpp peer skipped (${decoding.llamaCpp.skipped})`
          : `llama.cpp on the same F32 GGUF: ${decoding.llamaCpp.tokensPerSecond.toFixed(1)} tokens/s (${decoding.ratioToLlamaCpp!.toFixed(2)}x)`),
      ...evaluationLines(evaluation),
      `peak memory (full training): ${training.peakRssMiB} MiB resident, ${training.peakTensorMiB} MiB in tensors`,
      ...distillationLines(distillation, training.tokensPerSecond),
      chunkedLossLine(chunkedLossMemory),
      `  chunked peak by vocabulary: ${chunkedLossPeaks.map(({ vocab, chunked }) => `${vocab.toLocaleString('en')}: ${peakText(chunked.peak)}`).join('; ')}`,
      ...quantizationLines(quantization),
      ...Object.values(labeling).map(labelingLine),
      '',
    ].join('\n'),
  );
  return 0;
}

function attentionProductsLine(result: AttentionProductsResult): string {
  const { name, batchSize, seqLen, heads, kvHeads, headDim } = result;
  return (
    `attention products (${name}: batch ${batchSize} x ${seqLen}, heads ${heads}/${kvHeads} kv, head dim ${headDim}; forward and backward): ` +
    `${result.attentionGflops.toFixed(1)} GFLOP/s, ${result.ratioToLinear.toFixed(2)}x a linear layer's ${result.linearGflops.toFixed(1)}`
  );
}

function distillationLines(result: DistillationBenchResult, trainingTokensPerSecond: number): string[] {
  const perStep = (mode: { tokensPerSecond: number; secondsPerStep: number }) =>
    `${mode.tokensPerSecond.toFixed(0)} tokens/s, ${mode.secondsPerStep.toFixed(2)} s/step`;
  const ratio = (mode: { ratioToCe: number }) => `${mode.ratioToCe.toFixed(2)}x CE`;
  return [
    `distillation (student: the benchmark model, batch ${result.batchSize} x ${result.seqLen}, AdamW, ${result.steps} steps each, ` +
      `${result.wallSeconds.toFixed(0)} s in all): CE through the KD objective ${perStep(result.ce)} ` +
      `(training line above: ${trainingTokensPerSecond.toFixed(0)})`,
    `  top-${result.k} stored soft labels: ${perStep(result.topK)}, ${ratio(result.topK)}`,
    `  full vocabulary from an in-process teacher (${result.teacher}; chunks of ${result.rowsPerChunk} rows x ` +
      `${result.vocabPerChunk} entries): ${perStep(result.full)}, ${ratio(result.full)}`,
  ];
}

function evaluationLines({ model, generation, generationLlamaCpp, loglikelihood }: EvaluationBenchResult): string[] {
  const llamaCpp =
    'skipped' in generationLlamaCpp
      ? `  the same through llama.cpp (eval --engine llama.cpp): not used (${generationLlamaCpp.skipped})`
      : `  the same through llama.cpp (eval --engine llama.cpp): ${generationLlamaCpp.questionsPerSecond.toFixed(2)} questions/s ` +
        `(${generationLlamaCpp.ratioToTfjs.toFixed(1)}x), ${(generationLlamaCpp.sameAnswers * 100).toFixed(0)}% of the answers identical`;
  return [
    `evaluation (the benchmark model with the byte-level tokenizer: vocabulary ${model.vocabSize}, ${(model.parameters / 1e6).toFixed(2)}M parameters; no answer cache):`,
    `  ${generation.suite}: ${generation.questionsPerSecond.toFixed(2)} questions/s, ${generation.tokensPerSecond.toFixed(1)} new tokens/s ` +
      `(${generation.questions} questions, up to ${generation.maxTokens} new tokens each, batch ${generation.batch}, ${generation.seconds.toFixed(1)} s)`,
    llamaCpp,
    `  ${loglikelihood.suite}, log-likelihood: ${loglikelihood.questionsPerSecond.toFixed(2)} questions/s ` +
      `(${loglikelihood.questions} questions, ${loglikelihood.choices} choices each, ${loglikelihood.seconds.toFixed(1)} s)`,
  ];
}

function quantizationLines({ parameters, positions, types }: QuantizationBenchResult): string[] {
  return [
    `GGUF export types (a ${(parameters / 1e6).toFixed(2)}M-parameter model with rows of whole super-blocks, read back; ${positions} positions against float32):`,
    ...types.map(
      (t) =>
        `  ${t.type.padEnd(6)} ${t.bitsPerWeight.toFixed(2)} bits/weight, mean KL ${t.meanKl.toExponential(2)} nats, ` +
        `max |dp| ${t.maxProbabilityError.toExponential(1)}, top-1 agreement ${(t.top1Agreement * 100).toFixed(1)}%, written in ${t.exportSeconds.toFixed(1)} s`,
    ),
  ];
}

function chunkedLossLine(result: ChunkedLossMemoryResult): string {
  const { chunked, unchunked } = result;
  const shape = `${result.rows} positions, hidden ${result.hidden}, vocabulary ${result.vocab.toLocaleString('en')}`;
  const chunks = `chunks of ${result.rowChunk} x ${result.vocabChunk}`;
  const peaks = unchunked ? `${peakText(chunked.peak)} chunked, ${peakText(unchunked.peak)} unchunked` : `${peakText(chunked.peak)} chunked`;
  const agreement = unchunked
    ? `; losses ${chunked.loss.toFixed(5)} and ${unchunked.loss.toFixed(5)} differ by ${result.lossAbsDifference!.toExponential(1)}, ` +
      `gradients by at most ${result.gradMaxAbsDifference!.toExponential(1)}`
    : '';
  return `KD loss + gradients (${shape}, ${chunks}): peak ${peaks}${agreement} (${result.wallSeconds.toFixed(1)} s)`;
}

/** "34.2 MiB on the wasm heap (tfjs counts 50.1)", or tfjs's count alone off wasm. */
function peakText({ heapBytes, countedBytes }: TensorPeak): string {
  const mib = (bytes: number) => (bytes / (1024 * 1024)).toFixed(1);
  return heapBytes === null ? `${mib(countedBytes)} MiB in tensors (tfjs's count)` : `${mib(heapBytes)} MiB on the wasm heap (tfjs counts ${mib(countedBytes)})`;
}

function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

function labelingLine(result: LabelingBenchResult): string {
  const { provider, delayMs, concurrency, tokensPerResponse, topLogprobs } = result;
  return (
    `labeling (${provider}, loopback, ${delayMs} ms delay, concurrency ${concurrency}): ` +
    `${result.requestsPerSecond.toFixed(0)} requests/s of ideal ${result.idealRequestsPerSecond.toFixed(0)} ` +
    `(${percent(result.efficiency)}, from a lone round trip of ${result.loneRoundTripMs.toFixed(1)} ms; ` +
    `${percent(result.efficiencyToServer)} of ${result.serverIdealRequestsPerSecond.toFixed(0)}, the server's hold time alone; ` +
    `bare fetch ${result.bareFetchRequestsPerSecond.toFixed(0)}, so ${percent(result.efficiencyToBareFetch)} of it), ` +
    `${Math.round(result.tokensPerSecond).toLocaleString('en')} tokens/s (${tokensPerResponse} tokens x top ${topLogprobs} each)`
  );
}

export function registerBench(program: Command, { io, setExitCode }: CommandContext): void {
  program
    .command('bench')
    .description('measure teacher labeling overhead, training, decoding, evaluation and distillation throughput, peak memory, and what each GGUF export type loses')
    .addOption(backendOption().default('auto'))
    .option('--steps <n>', 'timed training steps (after one warm-up step)', integerArg(1), 5)
    .option('--distill-steps <n>', 'timed steps per distillation mode (after one warm-up step) [--steps]', integerArg(1))
    .option('--batch-size <n>', 'sequences per training step', integerArg(1), 8)
    .option('--seq-len <n>', 'tokens per sequence', integerArg(2), 256)
    .option('--decode-tokens <n>', 'tokens to decode', integerArg(2), 64)
    .option('--label-requests <n>', 'timed teacher requests per provider', integerArg(1), 400)
    .option('--label-concurrency <n>', 'teacher requests in flight at once', integerArg(1), 8)
    .option('--label-delay-ms <n>', 'how long the loopback teacher server holds each request', integerArg(1), 50)
    .option('--eval-questions <n>', 'questions per evaluation suite (GSM8K generation, MMLU log-likelihood)', integerArg(1), 16)
    .addOption(new Option('--shape <name>', 'instead: a real-size model with random weights and this published config').choices(MODEL_SHAPES))
    .option('--model <path>', 'instead: this model (folder, .gguf or ollama:NAME) at real size')
    .option('--layers <n>', 'with --shape: only the first n layers (every shape and the embedding kept)', integerArg(1))
    .option('--rank <n>', 'with --shape/--model: LoRA rank on every linear layer', integerArg(1), 16)
    .addOption(new Option('--weights <how>', 'with --shape/--model: how the base is held').choices(WEIGHT_RESIDENCIES).default('auto'))
    .option('--no-torch', 'with --shape/--model: skip the PyTorch peer')
    .option('--calibrate-threads', 'instead: time training and decoding at each wasm thread count and cache the fastest for this machine')
    .option('--json', 'print the figures as one JSON object')
    .action(async (flags: Omit<BenchCommandOptions, 'json'> & RealSizeFlags & { json?: boolean; calibrateThreads?: boolean }, command: Command) => {
      const json = flags.json ?? false;
      if (flags.calibrateThreads) return setExitCode(await calibrateThreadsCommand(json, io));
      if (flags.shape === undefined && flags.model === undefined) return setExitCode(await benchCommand({ ...flags, json }, io));
      // Real-size runs measure a user's LoRA step, 512 tokens, unless told otherwise.
      const seqLen = command.getOptionValueSource('seqLen') === 'default' ? REAL_SIZE_SEQ_LEN : flags.seqLen;
      const steps = command.getOptionValueSource('steps') === 'default' ? 1 : flags.steps;
      setExitCode(await realSizeBenchCommand({ ...flags, seqLen, steps, json }, io));
    });
}

async function calibrateThreadsCommand(json: boolean, io: CliIo): Promise<number> {
  const { calibrateThreads, CALIBRATION_WORK } = await import('../../bench/thread-calibration.ts');
  const result = await calibrateThreads((line) => json || io.stderr.write(`${line}\n`));
  if (json) {
    io.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  }
  const { batchSize, seqLen, decodeTokens } = CALIBRATION_WORK;
  io.stdout.write(
    [
      `wasm threads on ${result.machine} (training: batch ${batchSize} x ${seqLen}; decoding: ${decodeTokens} greedy tokens)`,
      ...result.measurements.map((m) => `  ${m.threads} thread(s): training ${m.trainingTokensPerSecond.toFixed(0)} tokens/s, decoding ${m.decodingTokensPerSecond.toFixed(1)} tokens/s`),
      `chosen: training ${result.best.training}, decoding ${result.best.decoding} (cached in ${result.path}; SLM_TRAIN_THREADS overrides)`,
      '',
    ].join('\n'),
  );
  return 0;
}

interface RealSizeFlags {
  shape?: ModelShape;
  model?: string;
  layers?: number;
  rank: number;
  weights: WeightResidency;
  torch: boolean;
}

const REAL_SIZE_SEQ_LEN = 512;

async function realSizeBenchCommand(options: RealSizeFlags & { backend: Backend; seqLen: number; steps: number; json: boolean }, io: CliIo): Promise<number> {
  const { runRealSizeBench } = await import('../../bench/real-size-run.ts');
  const log = (line: string) => options.json || io.stderr.write(`${line}\n`);
  const result = await runRealSizeBench({ ...options, log });
  if (options.json) {
    io.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  }
  const gib = (bytes: number | null) => (bytes === null ? '-' : `${(bytes / 2 ** 30).toFixed(2)} GiB`);
  const within = (planned: number, measured: number) => `${(((planned - measured) / measured) * 100).toFixed(0)}%`;
  const { lora, planned, measured, torch } = result;
  io.stdout.write(
    [
      `${result.model}: ${(result.parameters / 1e9).toFixed(2)}B parameters, ${gib(result.storedBytes)} stored; ${result.backend}, ${result.threads} thread(s); base ${result.residency}, recompute ${result.recompute ? 'on' : 'off'}, ${gib(result.pinBytes)} pinned at most`,
      `load: ${result.loadSeconds.toFixed(1)} s; scoring ${lora.seqLen} tokens as \`score\` loads the model: ${result.scoring.tokensPerSecond.toFixed(1)} tokens/s, then greedy decoding ${result.scoring.decoding.tokensPerSecond.toFixed(2)} tokens/s, peak RSS ${gib(result.scoring.peakRssBytes)}`,
      `LoRA rank ${lora.rank}, all-linear (${lora.trainable.toLocaleString('en')} trainable), 1 x ${lora.seqLen}: ${lora.tokensPerSecond.toFixed(1)} tokens/s (${lora.secondsPerStep.toFixed(1)} s/step)`,
      'tokensPerSecond' in torch
        ? `PyTorch ${torch.torch} eager float32 (${torch.blas}), same shape, ${torch.threads} thread(s): ${torch.tokensPerSecond.toFixed(1)} tokens/s; slm-train ${result.loraRatioToTorch!.toFixed(2)}x`
        : `PyTorch: skipped (${torch.skipped})`,
      `LoRA run: peak host RSS ${gib(measured.peakRssBytes)} (planned ${gib(planned.hostPeakBytes)}, ${within(planned.hostPeakBytes, measured.peakRssBytes)}); ` +
        `peak backend ${gib(measured.peakBackendBytes)} (planned ${gib(planned.backendPeakBytes)}, ${within(planned.backendPeakBytes, measured.peakBackendBytes)}); wasm heap grown to ${gib(measured.heapBytes)}`,
      '',
    ].join('\n'),
  );
  return 0;
}
