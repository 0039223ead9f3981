import type { ThreadSource, Workload } from './thread-choice.ts';

/** The tfjs backends slm-train can run on, best first: the order `auto` tries them in. */
export const BACKEND_NAMES = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'] as const;

export type BackendName = (typeof BACKEND_NAMES)[number];

export type BackendChoice = 'auto' | BackendName;

export interface BackendAttempt {
  backend: BackendName;
  ok: boolean;
  /** Why it was not used (with how to fix it), or what was loaded. */
  reason: string;
}

export interface BackendReport {
  backend: BackendName;
  /** `tf.getBackend()`: tensorflow-gpu and tensorflow are both 'tensorflow' to tfjs. */
  tfjsName: string;
  /**
   * CPU threads the backend computes with: the wasm thread pool, 1 for cpu, and the machine's
   * parallelism for TensorFlow, which sizes its own thread pools.
   */
  threads: number;
  /** Where the wasm thread count came from (SLM_TRAIN_THREADS, the machine's calibration, the rule, or the caller). */
  threadSource: ThreadSource | 'caller';
  attempts: BackendAttempt[];
  /** One line for humans: the backend in use and why better ones were not. */
  summary: string;
}

export interface InitBackendOptions {
  /** wasm threads, at most 8 (the tfjs wasm build's limit); default: chosen for `workload` (thread-choice.ts). */
  threads?: number;
  /** What the process will mostly run, for the default thread count: training unless said. */
  workload?: Workload;
}

/** The result of trying one backend: what `initBackend` and `doctorReport` both build on. */
export type BackendOutcome = { ok: true; reason: string; threads: number } | { ok: false; reason: string };
