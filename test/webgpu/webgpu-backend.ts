/**
 * The webgpu test files run on whatever adapter Dawn offers, a software one (lavapipe) included. Without
 * one they are skipped, unless SLM_TRAIN_REQUIRE_WEBGPU is set (CI sets it after installing lavapipe),
 * where the missing adapter is a failure.
 */
import { initBackend } from '../../src/backend/index.ts';
import { probeWebgpu } from '../../src/backend/webgpu.ts';

export async function webgpuOrSkip(): Promise<boolean> {
  const { adapter, problem } = await probeWebgpu();
  if (!adapter) {
    if (process.env.SLM_TRAIN_REQUIRE_WEBGPU) throw new Error(`SLM_TRAIN_REQUIRE_WEBGPU is set, but ${problem}`);
    return false;
  }
  await initBackend('webgpu');
  return true;
}
