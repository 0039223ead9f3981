/**
 * The memory plan of a recipe's train stage, made from the student's config before any weight is read
 * (see model/memory-plan.ts). The train stage follows it; `slm-train plan` prints it.
 */
import { backendCapacity, hostCapacity } from '../backend/capacity.ts';
import { resolveModelConfig, type ModelConfig } from '../model/config.ts';
import { inspectModel, resolveResidency } from '../model-files/load.ts';
import { resolveLoraConfig, type LoraConfig } from '../model/lora-config.ts';
import { planTrainingMemory, type TrainingMemory } from '../model/memory-plan.ts';
import type { Recipe, StudentSpec } from '../recipe/index.ts';
import { createByteLevelTokenizer } from '../tokenizer/byte-level.ts';
import { loadTokenizer } from '../tokenizer/hf-tokenizer.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';

export async function planStudentMemory(recipe: Recipe): Promise<TrainingMemory> {
  const { config, storedBytes, lora, requested } = await studentShape(recipe.student);
  const capacity = backendCapacity();
  return planTrainingMemory({
    config,
    storedBytes,
    residency: lora ? resolveResidency(config, requested, capacity) : 'resident',
    // A DPO batch holds each pair's chosen and rejected sequences.
    batchSize: recipe.train.batchSize * (recipe.train.objective === 'dpo' ? 2 : 1),
    seqLen: recipe.data.seqLen,
    lora,
    // Distillation compares the student's full distribution; only plain CE can stream the head's chunks.
    fullLogits: recipe.distill !== undefined && recipe.distill.labels !== 'sequence',
    recompute: recipe.train.recompute,
    capacity,
    hostBytes: hostCapacity(),
  });
}

async function studentShape(
  spec: StudentSpec,
): Promise<{ config: ModelConfig; storedBytes: number | null; lora: LoraConfig | null; requested: 'auto' | 'resident' | 'streamed' }> {
  if (spec.type !== 'scratch') {
    const { config, storedBytes } = await inspectModel(spec.base);
    // A full student trains every weight, so every weight is a float32 variable in the backend.
    return spec.type === 'lora' ? { config, storedBytes, lora: loraConfigOf(spec), requested: spec.weights } : { config, storedBytes, lora: null, requested: 'resident' };
  }
  const tokenizer = await scratchTokenizer(spec);
  return { config: resolveModelConfig({ ...spec.architecture, vocabSize: tokenizer.vocabSize }), storedBytes: null, lora: null, requested: 'resident' };
}

/** A scratch student's tokenizer: the byte-level one, or a tokenizer.json. */
export async function scratchTokenizer(spec: Extract<StudentSpec, { type: 'scratch' }>): Promise<Tokenizer> {
  return spec.tokenizer === 'byte' ? createByteLevelTokenizer() : loadTokenizer(spec.tokenizer);
}

/** The adapter config of a LoRA student: the recipe names targets without their `_proj`. */
export function loraConfigOf(spec: Extract<StudentSpec, { type: 'lora' }>): LoraConfig {
  return resolveLoraConfig({ ...spec, targets: spec.targets === 'all-linear' ? 'all-linear' : spec.targets.map((t) => `${t}_proj`) });
}
