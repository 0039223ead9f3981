/**
 * WebGPU through Dawn: the `webgpu` package's prebuilt dawn.node gives Node a `navigator.gpu` on Vulkan
 * (Linux, Windows), Metal (macOS) or D3D12 (Windows), and @tensorflow/tfjs-backend-webgpu computes on it.
 * This is the one module that knows either package.
 *
 * `auto` takes a hardware adapter only: a software one (Mesa's llvmpipe/lavapipe, SwiftShader) computes at
 * about 1 GFLOP/s, slower than wasm, and is used only when asked for by name (`--backend webgpu`), as CI
 * does to test this backend's numerics without a GPU.
 */
import { tmpdir } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { registerWebgpuTrainingKernels } from './kernels/webgpu.ts';
import { loadOptionalPackage } from './optional-package.ts';
import type { BackendOutcome } from './types.ts';

export interface WebgpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  type: 'discrete' | 'integrated' | 'software' | 'unknown';
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number };
}

/** What to install when no adapter is found, per platform. */
export const MISSING_DRIVER_HINT: Record<string, string> = {
  linux:
    'install a Vulkan driver: NVIDIA\'s proprietary driver, or Mesa\'s (apt-get install mesa-vulkan-drivers; on Debian bookworm from bookworm-backports, since Dawn refuses Mesa 22.3); check with vulkaninfo --summary',
  darwin: 'WebGPU uses Metal, which every Mac since 2012 has: update macOS',
  win32: 'WebGPU uses Direct3D 12 or Vulkan: update the GPU driver',
};

let adapterOnce: Promise<{ adapter: WebgpuAdapter | null; problem: string | null }> | undefined;
let probed: WebgpuAdapter | null = null;

/** The adapter found by an earlier probe, for code that cannot wait (the memory plan); null before one. */
export function probedWebgpuAdapter(): WebgpuAdapter | null {
  return probed;
}

/** The adapter Dawn offers this process (the one tfjs will use), or why there is none. Cached. */
export function probeWebgpu(): Promise<{ adapter: WebgpuAdapter | null; problem: string | null }> {
  adapterOnce ??= probe();
  return adapterOnce;
}

async function probe(): Promise<{ adapter: WebgpuAdapter | null; problem: string | null }> {
  // Dawn's Vulkan loader wants a runtime folder; without one it warns on every start.
  process.env.XDG_RUNTIME_DIR ??= tmpdir();
  const loaded = await loadOptionalPackage('webgpu');
  if (loaded.status !== 'loaded') {
    return { adapter: null, problem: loaded.status === 'not-installed' ? 'the webgpu package is not installed (npm install webgpu)' : `the webgpu package failed to load: ${loaded.message.split('\n')[0]}` };
  }
  const { create, globals } = loaded.module as { create(flags: string[]): GPU; globals: Record<string, unknown> };
  Object.assign(globalThis, globals);
  const gpu = create([]);
  // tfjs-backend-webgpu finds the device through navigator.gpu, which Node 20 lacks.
  if (typeof navigator === 'undefined' || !('gpu' in navigator)) {
    Object.defineProperty(globalThis, 'navigator', { value: { ...(globalThis.navigator ?? {}), gpu }, configurable: true, writable: true });
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return { adapter: null, problem: `Dawn found no GPU adapter: ${MISSING_DRIVER_HINT[process.platform] ?? 'install the GPU driver'}` };
  probed = describeAdapter(adapter);
  return { adapter: probed, problem: null };
}

function describeAdapter(adapter: GPUAdapter): WebgpuAdapter {
  const info = (adapter as GPUAdapter & { info: GPUAdapterInfo & { isFallbackAdapter?: boolean } }).info;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  const software = info.isFallbackAdapter === true || /llvmpipe|lavapipe|swiftshader|software|cpu/i.test(text);
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    type: software ? 'software' : typeByVendor(info.vendor),
    limits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize },
  };
}

/** WebGPU does not say whether a GPU is discrete; the vendor mostly does (AMD makes both kinds). */
function typeByVendor(vendor: string): WebgpuAdapter['type'] {
  if (/nvidia/i.test(vendor)) return 'discrete';
  if (/intel|apple|arm|qualcomm/i.test(vendor)) return 'integrated';
  return 'unknown';
}

export function describeWebgpuAdapter(adapter: WebgpuAdapter): string {
  const name = [adapter.vendor, adapter.device || adapter.architecture, adapter.description].filter(Boolean).join(' ');
  return `${name} (${adapter.type}; largest binding ${(adapter.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB)`;
}

/**
 * Makes webgpu current. `explicit`: asked for by name, so a software adapter is accepted; `auto` passes
 * false and gets only a hardware one.
 */
export async function tryWebgpu(explicit: boolean): Promise<BackendOutcome> {
  const { adapter, problem } = await probeWebgpu();
  if (!adapter) return { ok: false, reason: problem ?? 'no adapter' };
  if (adapter.type === 'software' && !explicit) {
    return { ok: false, reason: `only a software adapter, ${describeWebgpuAdapter(adapter)}: slower than wasm, used only with --backend webgpu` };
  }
  const backend = await loadOptionalPackage('@tensorflow/tfjs-backend-webgpu');
  if (backend.status !== 'loaded') return { ok: false, reason: `@tensorflow/tfjs-backend-webgpu did not load (${backend.status === 'load-failed' ? backend.message.split('\n')[0] : 'not installed'})` };
  registerWebgpuTrainingKernels();
  if (!(await tf.setBackend('webgpu'))) return { ok: false, reason: "tf.setBackend('webgpu') failed; tfjs logged the cause above" };
  return { ok: true, reason: `loaded: ${describeWebgpuAdapter(adapter)}`, threads: 1 };
}
