/**
 * The model a recipe trains, whatever its kind: a scratch transformer whose every weight trains, LoRA
 * adapters on a frozen pretrained base, or a pretrained model whose every weight trains (full
 * fine-tuning). The train stage works only through this interface.
 */
import { cacheOnHost } from '../backend/host-read.ts';
import type * as tf from '@tensorflow/tfjs-core';
import { writeHfModelDir } from '../model-files/hf-model-dir.ts';
import { writePeftAdapter } from '../model-files/peft.ts';
import { CausalLM } from '../model/causal-lm.ts';
import { countParameters, resolveModelConfig } from '../model/config.ts';
import type { Projection } from '../model/layers.ts';
import { loadModel, loadModelTokenizer, type LoadModelOptions } from '../model-files/load.ts';
import { LoraAdapter } from '../model/lora.ts';
import { planProblem, planSummary, type TrainingMemory } from '../model/memory-plan.ts';
import type { FullStudentSpec, LoraStudentSpec, Recipe, ScratchStudentSpec, StudentSpec } from '../recipe/index.ts';
import { tokenizerFiles, type TokenizerFiles } from '../tokenizer/tokenizer-files.ts';
import { BYTE_LEVEL_TOKENIZER_CONFIG } from '../tokenizer/byte-level.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { SlmError } from '../util/errors.ts';
import { loraConfigOf, planStudentMemory, scratchTokenizer } from './memory.ts';
import type { Logger } from '../util/progress.ts';

export interface Student {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** The base's chat template (Jinja), which messages data is rendered with; null: none (ChatML is used). */
  chatTemplate: string | null;
  /** What the optimizer updates and checkpoints hold. */
  trainable: Map<string, tf.Variable>;
  /** The forward pass's projections: the model's own, or with adapter updates. */
  project: Projection;
  /** Random state besides the data order (LoRA dropout), checkpointed for an exact resume. */
  rngState: number;
  setTraining(on: boolean): void;
  /** Writes the trained result: a Hugging Face model folder, or a PEFT adapter folder. */
  writeFinal(dir: string): Promise<void>;
  /** One line for the log: size, and what trains. */
  summary: string;
  dispose(): void;
}

/**
 * The recipe's student, held as its memory plan says (announced in one line); a plan that does not fit
 * the backend stops here, before any weight is read.
 */
export async function buildStudent(recipe: Recipe, logger: Logger): Promise<Student> {
  const memory = await planStudentMemory(recipe);
  logger.info(planSummary(memory.plan));
  if (!memory.plan.fits) throw new SlmError(`student: ${planProblem(memory.plan)}`, { code: 'ERR_MEMORY_PLAN' });
  const { student: spec, seed, data } = recipe;
  const student =
    spec.type === 'scratch'
      ? await scratchStudent(spec, seed, data.seqLen)
      : spec.type === 'lora'
        ? await loraStudent(spec, seed, data.seqLen, memory, logger)
        : await fullStudent(spec, data.seqLen, logger);
  student.model.recompute = memory.recompute;
  return student;
}

/** The student's tokenizer and chat template without building the model: what data preparation needs. */
export async function loadStudentTokenizer(spec: StudentSpec): Promise<{ tokenizer: Tokenizer; chatTemplate: string | null }> {
  if (spec.type === 'scratch') {
    return { tokenizer: await scratchTokenizer(spec), chatTemplate: null };
  }
  const { tokenizer, chatTemplate } = await loadModelTokenizer(spec.base);
  if (!tokenizer) throw missingTokenizer(spec.base);
  return { tokenizer, chatTemplate };
}

function missingTokenizer(base: string): SlmError {
  return new SlmError(`student.base: ${base} has no tokenizer (tokenizer.json), which training needs`, { code: 'ERR_RECIPE' });
}

async function scratchStudent(spec: ScratchStudentSpec, seed: number, seqLen: number): Promise<Student> {
  const { tokenizer, chatTemplate } = await loadStudentTokenizer(spec);
  const arch = spec.architecture;
  checkContext(arch.maxPositionEmbeddings, seqLen, 'student.architecture.max_position_embeddings');
  const config = resolveModelConfig({ ...arch, vocabSize: tokenizer.vocabSize, bosTokenId: tokenizer.bosId, eosTokenId: tokenizer.eosId });
  const model = CausalLM.init(config, { seed, std: spec.initStd });
  const files = async () => ({ json: tokenizer.toJSON(), config: spec.tokenizer === 'byte' ? BYTE_LEVEL_TOKENIZER_CONFIG : undefined });
  const summary = `scratch model: ${formatCount(countParameters(config))} parameters, ${config.numLayers} layers, hidden ${config.hiddenSize}, vocabulary ${config.vocabSize}`;
  return everyWeightTrains({ model, tokenizer, chatTemplate }, files, summary);
}

/** A student whose every weight trains (scratch, full): final/ is a Hugging Face folder with these tokenizer files. */
function everyWeightTrains(
  loaded: Pick<Student, 'model' | 'tokenizer' | 'chatTemplate'>,
  files: () => Promise<TokenizerFiles>,
  summary: string,
): Student {
  const { model } = loaded;
  return {
    ...loaded,
    trainable: model.params,
    project: model.project,
    rngState: 0,
    setTraining: () => {},
    writeFinal: async (dir) => {
      await cacheOnHost(model.params.values());
      const { json, config } = await files();
      await writeHfModelDir(dir, { config: model.config, tensors: model.eachHfTensor(), dtype: 'F32', tokenizerJson: json, tokenizerConfig: config });
    },
    summary,
    dispose: () => model.dispose(),
  };
}

async function loraStudent(spec: LoraStudentSpec, seed: number, seqLen: number, memory: TrainingMemory, logger: Logger): Promise<Student> {
  const { model, tokenizer, chatTemplate } = await loadBase(spec.base, seqLen, { logger, weights: memory.residency, pinBytes: memory.pinBytes, pinAs: 'float32' });
  for (const p of model.params.values()) p.trainable = false;
  const lora = loraConfigOf(spec);
  const adapter = LoraAdapter.init(model, lora, seed);
  return {
    model,
    tokenizer,
    chatTemplate,
    trainable: adapter.params,
    project: adapter.wrap(model),
    get rngState() {
      return adapter.dropoutState;
    },
    set rngState(state: number) {
      adapter.dropoutState = state;
    },
    setTraining: (on) => (adapter.training = on),
    writeFinal: async (dir) => writePeftAdapter(dir, lora, await adapter.peftTensors(), spec.base),
    summary: `LoRA rank ${lora.rank} on ${lora.targets.join(', ')}: ${formatCount(adapter.parameterCount())} trainable of ${formatCount(model.parameterCount())} base parameters (frozen)`,
    dispose: () => {
      adapter.dispose();
      model.dispose();
    },
  };
}

/** Full fine-tuning: the pretrained model's every weight trains; final/ is a Hugging Face folder with the base's tokenizer files. */
async function fullStudent(spec: FullStudentSpec, seqLen: number, logger: Logger): Promise<Student> {
  const { model, tokenizer, chatTemplate } = await loadBase(spec.base, seqLen, { logger, weights: 'resident' });
  const summary = `full fine-tuning of ${spec.base}: ${formatCount(model.parameterCount())} parameters, all trained`;
  return everyWeightTrains({ model, tokenizer, chatTemplate }, () => tokenizerFiles(spec.base), summary);
}

/** A pretrained base with the tokenizer training needs; refused, and freed, without one or with a context shorter than data.seq_len. */
async function loadBase(base: string, seqLen: number, options: LoadModelOptions): Promise<Pick<Student, 'model' | 'tokenizer' | 'chatTemplate'>> {
  const { model, tokenizer, chatTemplate } = await loadModel(base, options);
  try {
    if (!tokenizer) throw missingTokenizer(base);
    checkContext(model.config.maxPositionEmbeddings, seqLen, `the base model's context length (${base})`);
    return { model, tokenizer, chatTemplate };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

function checkContext(maxPositions: number, seqLen: number, what: string): void {
  if (maxPositions < seqLen) {
    throw new SlmError(`data.seq_len (${seqLen}) is longer than ${what}: ${maxPositions}`, { code: 'ERR_RECIPE' });
  }
}

function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}K`;
}
