import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { BackendOutcome } from './types.ts';

export async function tryCpu(): Promise<BackendOutcome> {
  if (!(await tf.setBackend('cpu'))) {
    return { ok: false, reason: "tf.setBackend('cpu') failed; tfjs logged the cause above" };
  }
  // On first use under Node the cpu backend prints a banner urging to install tfjs-node; the backend
  // report already says why tfjs-node is not in use.
  (tf.backend() as { firstUse?: boolean }).firstUse = false;
  return { ok: true, reason: 'loaded: plain JavaScript kernels, 1 thread', threads: 1 };
}
