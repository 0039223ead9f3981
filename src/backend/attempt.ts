import { tryCpu } from './cpu.ts';
import { tryTensorflow } from './tensorflow.ts';
import type { BackendName, BackendOutcome } from './types.ts';
import { tryWasm } from './wasm.ts';
import { tryWebgpu } from './webgpu.ts';

/**
 * Loads one backend and makes it current, or says why it cannot be. Never throws. `explicit`: the user
 * named this backend (webgpu then accepts a software adapter).
 */
export async function attemptBackend(backend: BackendName, threads: number, explicit = false): Promise<BackendOutcome> {
  try {
    switch (backend) {
      case 'tensorflow-gpu':
      case 'tensorflow':
        return await tryTensorflow(backend);
      case 'webgpu':
        return await tryWebgpu(explicit);
      case 'wasm':
        return await tryWasm(threads);
      case 'cpu':
        return await tryCpu();
    }
  } catch (error) {
    return { ok: false, reason: `unexpected error: ${error instanceof Error ? error.message : String(error)}` };
  }
}
