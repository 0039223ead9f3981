import * as tf from '@tensorflow/tfjs-core';
import './gradients.ts';
import { attemptBackend } from './attempt.ts';
import { BackendOptionError, BackendUnavailableError } from './errors.ts';
import { registerWasmKernels } from './kernels/index.ts';
import { guardWasmKernels } from './wasm-faults.ts';
import {
  BACKEND_NAMES,
  type BackendAttempt,
  type BackendChoice,
  type BackendName,
  type BackendReport,
  type InitBackendOptions,
} from './types.ts';
import { chooseWasmThreads } from './thread-choice.ts';

const CHOICES: readonly BackendChoice[] = ['auto', ...BACKEND_NAMES];

let pending: Promise<unknown> = Promise.resolve();

/**
 * Makes a tfjs backend current and reports which one and why. `auto` takes the first that loads of
 * tensorflow-gpu, webgpu on a hardware adapter, tensorflow, wasm, cpu; an explicit choice that cannot load throws
 * BackendUnavailableError with the reason. Safe to call again, also to switch backends; calls run one
 * at a time. Call it before creating any tensor: wasm's thread count is fixed when it initializes.
 */
export function initBackend(choice: BackendChoice, options: InitBackendOptions = {}): Promise<BackendReport> {
  const run = pending.then(() => select(choice, options));
  pending = run.catch(() => undefined);
  return run;
}

async function select(choice: BackendChoice, options: InitBackendOptions): Promise<BackendReport> {
  checkChoice(choice);
  const chosen = options.threads === undefined ? chooseWasmThreads(options.workload ?? 'training') : { threads: options.threads, source: 'caller' as const };
  const threads = chosen.threads;
  checkThreads(threads);
  registerWasmKernels();
  guardWasmKernels();
  const previous = tf.engine().backendName; // unset until a backend has been chosen
  const attempts: BackendAttempt[] = [];
  for (const backend of choice === 'auto' ? BACKEND_NAMES : [choice]) {
    const outcome = await attemptBackend(backend, threads, choice !== 'auto');
    attempts.push({ backend, ok: outcome.ok, reason: outcome.reason });
    if (outcome.ok) {
      return { backend, tfjsName: tf.getBackend(), threads: outcome.threads, threadSource: chosen.source, attempts, summary: summarize(backend, attempts) };
    }
  }
  // A failed attempt may have switched backends (importing tfjs-node does); put back what was current.
  if (tf.engine().registry[previous] !== undefined) await tf.setBackend(previous);
  throw new BackendUnavailableError(choice, attempts);
}

/** "wasm (loaded: SIMD, 2 threads); not used: tensorflow-gpu: <reason>; tensorflow: <reason>" */
export function summarize(backend: BackendName, attempts: BackendAttempt[]): string {
  const chosen = attempts.find((a) => a.ok && a.backend === backend);
  const head = `${backend} (${chosen?.reason ?? 'loaded'})`;
  const skipped = attempts.filter((a) => !a.ok);
  if (skipped.length === 0) return head;
  return `${head}; not used: ${skipped.map((a) => `${a.backend}: ${a.reason}`).join('; ')}`;
}

function checkChoice(choice: string): asserts choice is BackendChoice {
  if (!(CHOICES as readonly string[]).includes(choice)) {
    throw new BackendOptionError(`initBackend: choice must be one of ${CHOICES.join(', ')}; got '${choice}'`);
  }
}

function checkThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new BackendOptionError(`initBackend: options.threads must be a positive integer; got ${threads}`);
  }
}
