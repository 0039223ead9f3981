/**
 * The memory plan of a recipe's train stage, made from the student's config before any weight is read:
 * how the base is held, whether layers are recomputed, how much of the base stays uploaded, and whether
 * it all fits the live backend. The train stage follows it; `slm-train plan` prints it.
 */
import { backendCapacity, hostCapacity } from '../backend/capacity.ts';
import { resolveModelConfig, type ModelConfig } from '../model/config.ts';
import { inspectModel, resolveResidency } from '../model/load.ts';
import { resolveLoraConfig, type LoraConfig } from '../model/lora-config.ts';
import { planMemory, type MemoryPlan } from '../model/memory-plan.ts';
import type { Recipe, StudentSpec } from '../recipe/index.ts';
import { createByteLevelTokenizer } from '../tokenizer/byte-level.ts';
import { loadTokenizer } from '../tokenizer/hf-tokenizer.ts';

/** Of the backend room the plan leaves free, the share given to keeping streamed weights uploaded. */
const PIN_SHARE = 0.5;

export interface StudentMemory {
  plan: MemoryPlan;
  residency: 'resident' | 'streamed';
  recompute: boolean;
  pinBytes: number;
}

export async function planStudentMemory(recipe: Recipe): Promise<StudentMemory> {
  const { config, storedBytes, lora, requested } = await studentShape(recipe.student);
  const capacity = backendCapacity();
  const residency = lora ? resolveResidency(config, requested, capacity) : 'resident';
  const request = (recompute: boolean, pinBytes: number) =>
    planMemory({
      config,
      residency,
      storedBytes,
      pinBytes,
      training: { batchSize: recipe.train.batchSize, seqLen: recipe.data.seqLen, lora, recompute },
      capacity,
      hostBytes: hostCapacity(),
    });
  const asked = recipe.train.recompute;
  const recompute = residency === 'streamed' || asked === true || (asked === 'auto' && !request(false, 0).fits);
  const unpinned = request(recompute, 0);
  const pinBytes = residency === 'streamed' ? Math.max(0, (capacity.bytes - unpinned.backendPeak) * PIN_SHARE) : 0;
  return { plan: request(recompute, pinBytes), residency, recompute, pinBytes };
}

async function studentShape(
  spec: StudentSpec,
): Promise<{ config: ModelConfig; storedBytes: number | null; lora: LoraConfig | null; requested: 'auto' | 'resident' | 'streamed' }> {
  if (spec.type === 'lora') {
    const { config, storedBytes } = await inspectModel(spec.base);
    return { config, storedBytes, lora: loraConfigOf(spec), requested: spec.weights };
  }
  const tokenizer = spec.tokenizer === 'byte' ? createByteLevelTokenizer() : await loadTokenizer(spec.tokenizer);
  return { config: resolveModelConfig({ ...spec.architecture, vocabSize: tokenizer.vocabSize }), storedBytes: null, lora: null, requested: 'resident' };
}

/** The adapter config of a LoRA student: the recipe names targets without their `_proj`. */
export function loraConfigOf(spec: Extract<StudentSpec, { type: 'lora' }>): LoraConfig {
  return resolveLoraConfig({ ...spec, targets: spec.targets === 'all-linear' ? 'all-linear' : spec.targets.map((t) => `${t}_proj`) });
}
