import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import './gradients.ts';
import { attemptBackend } from './attempt.ts';
import { detectGpu, type GpuEvidence } from './gpu.ts';
import type { BackendName } from './types.ts';
import { chooseWasmThreads, THREADED_MIN_WORK, type ThreadChoice, type Workload } from './thread-choice.ts';
import { describeWasm, initWasm, type WasmStatus } from './wasm.ts';
import { describeWebgpuAdapter, probeWebgpu, type WebgpuAdapter } from './webgpu.ts';

export interface DoctorBackend {
  backend: BackendName;
  status: 'loaded' | 'not available';
  reason: string;
}

export interface DoctorReport {
  node: string;
  tfjsCore: string;
  platform: string;
  cpus: number;
  /** Best first, in the order `initBackend('auto')` tries them. */
  backends: DoctorBackend[];
  /** null when the wasm backend did not load. */
  wasm: WasmStatus | null;
  /** The wasm thread count each workload starts with, and where it came from. */
  threads: Record<Workload, ThreadChoice>;
  /** The adapter Dawn offers (name, vendor, type, limits), or why there is none. */
  webgpu: { adapter: WebgpuAdapter | null; problem: string | null };
  gpu: GpuEvidence;
}

/**
 * Loads every backend in turn and reports what works here and why the rest do not. It leaves the
 * backend that was current before it current again.
 */
export async function doctorReport(): Promise<DoctorReport> {
  const previous = tf.engine().backendName; // unset until a backend has been chosen
  const choices = { training: chooseWasmThreads('training'), decoding: chooseWasmThreads('decoding') };
  const threads = choices.training.threads;
  const gpuBackend = await probe('tensorflow-gpu', threads);
  const webgpu = await probeWebgpuBackend(threads);
  const tensorflow = await probe('tensorflow', threads);
  const wasm = await probeWasm(threads);
  const cpu = await probe('cpu', threads);
  if (tf.engine().registry[previous] !== undefined) await tf.setBackend(previous);
  return {
    node: process.version,
    tfjsCore: tf.version_core,
    platform: `${process.platform} ${process.arch}`,
    cpus: availableParallelism(),
    backends: [gpuBackend, webgpu, tensorflow, wasm.entry, cpu],
    wasm: wasm.status,
    threads: choices,
    webgpu: await probeWebgpu(),
    gpu: await detectGpu(),
  };
}

async function probe(backend: BackendName, threads: number): Promise<DoctorBackend> {
  const outcome = await attemptBackend(backend, threads);
  return { backend, status: outcome.ok ? 'loaded' : 'not available', reason: outcome.reason };
}

/** Loaded as `--backend webgpu` would load it; the reason says whether `auto` takes it too. */
async function probeWebgpuBackend(threads: number): Promise<DoctorBackend> {
  const byName = await attemptBackend('webgpu', threads, true);
  if (!byName.ok) return { backend: 'webgpu', status: 'not available', reason: byName.reason };
  const software = (await probeWebgpu()).adapter?.type === 'software';
  return { backend: 'webgpu', status: 'loaded', reason: `${byName.reason}${software ? '; a software adapter: used only with --backend webgpu, not by auto' : ''}` };
}

async function probeWasm(threads: number): Promise<{ entry: DoctorBackend; status: WasmStatus | null }> {
  try {
    const status = await initWasm(threads);
    return { entry: { backend: 'wasm', status: 'loaded', reason: describeWasm(status) }, status };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { entry: { backend: 'wasm', status: 'not available', reason }, status: null };
  }
}

export function formatDoctorReport(report: DoctorReport): string {
  const lines = [
    `Node.js    ${report.node} (${report.platform}, ${report.cpus} CPUs)`,
    `tfjs-core  ${report.tfjsCore}`,
    'Backends (best first):',
    ...report.backends.map((b) => `  ${b.backend.padEnd(16)}${b.status.padEnd(15)}${b.reason}`),
    `wasm       ${formatWasm(report.wasm)}`,
    `threads    ${(['training', 'decoding'] as const).map((w) => `${w} ${report.threads[w].threads} (${report.threads[w].source})`).join(', ')}` +
      `; decoding a model whose hidden x intermediate reaches ${THREADED_MIN_WORK.toLocaleString('en-US')} takes training's`,
    `WebGPU     ${report.webgpu.adapter ? formatAdapter(report.webgpu.adapter) : `no adapter: ${report.webgpu.problem}`}`,
    `GPU        ${formatGpu(report.gpu)}`,
    ...report.gpu.checks.map((c) => `  ${c.source.padEnd(26)}${c.detail}`),
  ];
  return lines.join('\n');
}

function formatWasm(wasm: WasmStatus | null): string {
  if (wasm === null) return 'not loaded';
  const threads = `${wasm.threads} thread${wasm.threads === 1 ? '' : 's'}`;
  return `SIMD ${wasm.simd ? 'yes' : 'no'}, ${threads}${wasm.note === null ? '' : ` (${wasm.note})`}`;
}

function formatAdapter(adapter: WebgpuAdapter): string {
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  return `${describeWebgpuAdapter(adapter)}; vendor ${adapter.vendor}, max buffer ${mib(adapter.limits.maxBufferSize)}, max storage binding ${mib(adapter.limits.maxStorageBufferBindingSize)}`;
}

function formatGpu(gpu: GpuEvidence): string {
  if (!gpu.visible) return 'none visible';
  return gpu.devices.length > 0 ? `visible: ${gpu.devices.join(', ')}` : 'visible';
}
