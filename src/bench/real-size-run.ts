/**
 * `slm-train bench --shape NAME | --model PATH`: a real-size model (random weights with a published
 * config, made on the fly, or the user's) measured by real-size.ts in a process of its own, and, where a
 * python3 with torch is on the machine, PyTorch eager float32 on the same shape and threads in the same run.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BackendChoice } from '../backend/index.ts';
import { shapeConfig, writeRandomModel, type ModelShape } from './model-shapes.ts';
import { runBenchWorker } from './worker-process.ts';
import type { RealSizeOptions, RealSizeResult, ScoringResult } from './real-size.ts';

const run = promisify(execFile);
/** Debian's python3-torch imports under this interpreter only. */
const PYTHON_WITH_TORCH = '/usr/bin/python3';
const WORKER = new URL('./real-size-worker.ts', import.meta.url);
const TORCH_PEER = new URL('./torch_lora_step.py', import.meta.url).pathname;

export interface RealSizeBenchOptions {
  shape?: ModelShape;
  /** A model folder, .gguf or ollama: reference instead of a made shape. */
  model?: string;
  /** Cut a made shape to its first layers. */
  layers?: number;
  seqLen: number;
  steps: number;
  rank: number;
  weights: RealSizeOptions['weights'];
  /** Run the PyTorch peer when it can run. */
  torch: boolean;
  backend: BackendChoice;
  threads?: number;
  log(line: string): void;
}

export interface TorchPeerResult {
  secondsPerStep: number;
  tokensPerSecond: number;
  threads: number;
  torch: string;
  /** The BLAS library torch ran on (the reference BLAS is ~30x slower than OpenBLAS). */
  blas: string;
}

export interface RealSizeBenchResult extends RealSizeResult {
  model: string;
  backend: string;
  threads: number;
  /** A scoring pass in a process of its own, loaded as `slm-train score` loads. */
  scoring: ScoringResult;
  /** PyTorch on the same shape, or why it did not run. */
  torch: TorchPeerResult | { skipped: string };
  /** Our LoRA tokens/s over PyTorch's, when both ran. */
  loraRatioToTorch: number | null;
}

export async function runRealSizeBench(options: RealSizeBenchOptions): Promise<RealSizeBenchResult> {
  const made = options.model === undefined ? await mkdtemp(join(tmpdir(), 'slm-bench-')) : null;
  try {
    const model = options.model ?? made!;
    if (made) {
      options.log(`writing a random ${options.shape}${options.layers ? ` cut to ${options.layers} layers` : ''} (BF16) to ${made}...`);
      await writeRandomModel(made, shapeConfig(options.shape!, options.layers));
    }
    const workerInput = { model, seqLen: options.seqLen, steps: options.steps, rank: options.rank, weights: options.weights, backend: options.backend, threads: options.threads };
    options.log(`scoring ${options.seqLen} tokens in a fresh process...`);
    const scoring = await phase<ScoringResult>({ ...workerInput, phase: 'score' });
    options.log(`${options.steps + 1} LoRA steps (rank ${options.rank}, all-linear, 1 x ${options.seqLen}) in a fresh process...`);
    const ours = await phase<RealSizeResult & { backend: string; threads: number }>({ ...workerInput, phase: 'train' });
    const configPath = join(model, 'config.json');
    const torch = !options.torch
      ? { skipped: 'not asked for (--no-torch)' }
      : existsSync(configPath)
        ? await torchPeer(configPath, options, ours.threads)
        : { skipped: 'the model has no config.json to build the same shape from' };
    const loraRatioToTorch = 'tokensPerSecond' in torch ? ours.lora.tokensPerSecond / torch.tokensPerSecond : null;
    return { model: options.model ?? `${options.shape}${options.layers ? ` (${options.layers} layers)` : ''}`, ...ours, scoring, torch, loraRatioToTorch };
  } finally {
    if (made) await rm(made, { recursive: true, force: true });
  }
}

function phase<T>(input: Record<string, unknown>): Promise<T> {
  return runBenchWorker(WORKER, input, `the ${input.phase} process`);
}

async function torchPeer(configPath: string, options: RealSizeBenchOptions, threads: number): Promise<TorchPeerResult | { skipped: string }> {
  const probe = await run(PYTHON_WITH_TORCH, ['-c', 'import torch']).then(
    () => null,
    () => `${PYTHON_WITH_TORCH} cannot import torch (apt-get install python3-torch)`,
  );
  if (probe) return { skipped: probe };
  options.log(`PyTorch eager float32 on the same shape, ${threads} thread(s)...`);
  const args = [TORCH_PEER, '--config', configPath, '--seq-len', String(options.seqLen), '--steps', String(options.steps), '--threads', String(threads), '--rank', String(options.rank)];
  const { stdout } = await run(PYTHON_WITH_TORCH, args, { maxBuffer: 1 << 20 });
  const parsed = JSON.parse(stdout.trim().split('\n').pop()!) as { seconds_per_step: number; tokens_per_second: number; threads: number; torch: string; blas: string };
  return { secondsPerStep: parsed.seconds_per_step, tokensPerSecond: parsed.tokens_per_second, threads: parsed.threads, torch: parsed.torch, blas: parsed.blas };
}
