import type { AdaptedModel } from '../model-files/adapted-model.ts';
import type { Workload } from '../backend/index.ts';
import type { Backend } from '../recipe/index.ts';

/**
 * What `score` and `generate` run on: a model (folder, .gguf or ollama:NAME), a PEFT adapter folder or a run
 * folder (see loadAdaptedModel), and the backend to run it with.
 */
export interface ModelTarget {
  model: string;
  backend: Backend;
}

/**
 * Starts the backend (its wasm threads chosen for `workload`, and for decoding for the model's width too),
 * loads the model and hands it to `use`, disposing the model however `use` ends. tfjs is imported only here,
 * on first use, so commands that need no model start fast.
 */
export async function withModel<T>(target: ModelTarget, workload: Workload, use: (loaded: AdaptedModel) => Promise<T>): Promise<T> {
  const { initBackend } = await import('../backend/index.ts');
  const { loadAdaptedModel } = await import('../model-files/adapted-model.ts');
  await initBackend(target.backend, { workload: await modelWorkload(target.model, workload) });
  const loaded = await loadAdaptedModel(target.model);
  try {
    return await use(loaded);
  } finally {
    loaded.dispose();
  }
}

/** `workload` for a model reference: decoding a real-size model takes training's threads (see decodingWorkload). */
export async function modelWorkload(ref: string, workload: Workload): Promise<Workload> {
  if (workload !== 'decoding') return workload;
  const { decodingWorkload } = await import('../backend/index.ts');
  const { adaptedModelConfig } = await import('../model-files/adapted-model.ts');
  return decodingWorkload(await adaptedModelConfig(ref));
}
