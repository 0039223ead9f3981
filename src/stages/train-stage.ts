/**
 * The train stage of a recipe: set up tokenizer, data, model and optimizer, resume from the latest
 * checkpoint, run the loop with validation and checkpoints, and write final/ (a Hugging Face model folder,
 * or a PEFT adapter folder for LoRA).
 */
import type { BackendReport } from '../backend/index.ts';
import type { Recipe } from '../recipe/index.ts';
import { SlmError } from '../util/errors.ts';
import { readGeneratedData, rowExample } from '../../datasets/generated-examples.ts';
import { datasetFromExamples, loadMixedDataset, loadTextDataset, type TextDataset } from '../../datasets/text-dataset.ts';
import { loadPreferenceDataset } from '../../datasets/preference-pairs.ts';
import { referenceLogpsSource } from './reference-logps.ts';
import type { ExampleManifest } from '../formats/arrow-examples.ts';
import { tokenizerHash } from '../tokenizer/hash.ts';
import type { BatchIteratorState } from '../../trainers/batches.ts';
import {
  checkpointDir,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  pruneCheckpoints,
  restoreParams,
  saveCheckpoint,
  type Checkpoint,
  type CheckpointEntry,
} from '../../trainers/checkpoint.ts';
import { FormatError } from '../formats/format-error.ts';
import { recoverStaleSiblings } from '../util/atomic.ts';
import { changedSettings, resumeSettings } from './resume-settings.ts';
import { DivergenceError, fit, type BatchSource, type LossFn, type StepMetrics } from '../../trainers/loop.ts';
import { AdamW } from '../../trainers/optimizer/adamw.ts';
import { validate } from '../../trainers/validation.ts';
import type { RunPaths } from '../run/layout.ts';
import { MetricsLog, type MetricsRecord } from '../run/metrics.ts';
import type { Logger, Progress } from '../util/progress.ts';
import { stepsForEpochs } from '../../trainers/schedule.ts';
import { evaluateDuringTraining } from './eval-stage.ts';
import { buildObjective, type DistillationMode, type Objective } from './distillation.ts';
import { OnPolicyBatches } from './on-policy.ts';
import { buildStudent, type Student } from './student.ts';

export interface TrainSummary {
  parameters: number;
  steps: number;
  resumedFromStep: number | null;
  finalLoss: number | null;
  validationLoss: number | null;
  tokensPerSecond: number | null;
  finalDir: string;
  /** Which teacher signal the student learned from, and why (see distillation.ts). */
  distillation: { mode: DistillationMode; reason: string };
}

/** What a checkpoint's trainer_state.json holds besides the step. */
interface TrainerState {
  step: number;
  dataState: BatchIteratorState;
  rngState: number;
  elapsedSeconds: number;
  /** resumeSettings() of the recipe it was trained under; absent in older checkpoints. */
  settings?: Record<string, string>;
}

/** What the loop works with once everything is set up. */
interface TrainSession {
  recipe: Recipe;
  paths: RunPaths;
  student: Student;
  optimizer: AdamW;
  data: TextDataset;
  metrics: MetricsLog;
  progress: Progress;
  loss: LossFn;
  /** The training data's batches, with the student's own samples mixed in for on-policy distillation. */
  batches: BatchSource;
  /** Optimizer steps to train: train.max_steps, or train.epochs over the packed windows. */
  steps: number;
}

/** Observers of a run, called after each step's metrics and checkpoint are written. */
export interface TrainHooks {
  afterStep?(metrics: StepMetrics): Promise<void> | void;
}

export async function trainStage(
  recipe: Recipe,
  paths: RunPaths,
  backend: BackendReport,
  progress: Progress,
  hooks: TrainHooks = {},
): Promise<TrainSummary> {
  const student = await buildStudent(recipe, progress);
  try {
    const { data, manifest } = await loadTrainingData(recipe, paths, student, progress);
    progress.info(`${student.summary}; backend ${backend.backend} (${backend.threads} thread${backend.threads === 1 ? '' : 's'})`);
    const objective = await buildObjective(recipe, student, manifest, progress);
    try {
      const batches = onPolicyBatches(recipe, student, data, objective) ?? data.train;
      const summary = await trainStudent(recipe, paths, student, data, { loss: objective.loss, batches }, progress, hooks);
      return { ...summary, distillation: { mode: objective.mode, reason: objective.reason } };
    } finally {
      objective.dispose();
    }
  } finally {
    student.dispose();
  }
}

/** On-policy distillation's batch source, when the recipe asks for it and a teacher is online. */
function onPolicyBatches(recipe: Recipe, student: Student, data: TextDataset, objective: Objective): OnPolicyBatches | null {
  const onPolicy = recipe.distill?.onPolicy;
  if (!onPolicy || onPolicy.lambda === 0 || !objective.teacher) return null;
  return new OnPolicyBatches(data.train, student, data.prompts, {
    ...onPolicy,
    seed: recipe.seed,
    seqLen: recipe.data.seqLen,
    batchSize: recipe.train.batchSize,
  });
}

/** The recipe's data file, or the examples the generate stage wrote to the run folder. */
async function loadTrainingData(
  recipe: Recipe,
  paths: RunPaths,
  student: Student,
  logger: Logger,
): Promise<{ data: TextDataset; manifest: ExampleManifest | null }> {
  const { data } = recipe;
  const shape = { seqLen: data.seqLen, batchSize: recipe.train.batchSize, seed: recipe.seed };
  if (recipe.train.objective === 'dpo') {
    const source = data.train ?? paths.preferences;
    const referenceLogps = referenceLogpsSource(recipe, paths.referenceLogps, student, logger);
    const pairs = await loadPreferenceDataset(source, student.tokenizer, { ...shape, promptField: data.promptField, chatTemplate: student.chatTemplate, validation: data.validation, referenceLogps });
    logger.info(`training on ${pairs.stats.train.windows} preference pairs from ${source}${pairs.stats.train.truncated > 0 ? ` (${pairs.stats.train.truncated} cut to data.seq_len)` : ''}`);
    return { data: pairs, manifest: null };
  }
  if (data.train !== undefined) {
    return { data: await loadTextDataset(student.tokenizer, { ...data, path: data.train, chatTemplate: student.chatTemplate, ...shape }), manifest: null };
  }
  if (data.mix !== undefined) {
    return { data: await loadMixedDataset(student.tokenizer, data.mix, { ...data, chatTemplate: student.chatTemplate, ...shape }), manifest: null };
  }
  if (!('fraction' in data.validation)) throw new SlmError('data.validation: generated data is split by { fraction }', { code: 'ERR_RECIPE' });
  const generated = await readGeneratedData(paths.dataSummary, {
    vocabSize: student.model.config.vocabSize,
    tokenizerHash: tokenizerHash(student.tokenizer),
  });
  logger.info(`training on ${generated.rows.length} generated examples from ${paths.data}`);
  const examples = generated.rows.map((row, i) => rowExample(row, i, generated.manifest.k));
  return {
    data: datasetFromExamples(examples, student.tokenizer, { ...shape, path: paths.data, validation: data.validation }),
    manifest: generated.manifest,
  };
}

async function trainStudent(
  recipe: Recipe,
  paths: RunPaths,
  student: Student,
  data: TextDataset,
  { loss, batches }: { loss: LossFn; batches: BatchSource },
  progress: Progress,
  hooks: TrainHooks,
): Promise<Omit<TrainSummary, 'distillation'>> {
  const optimizer = new AdamW(student.trainable, {
    lr: recipe.train.lr,
    betas: recipe.train.betas,
    eps: recipe.train.eps,
    weightDecay: recipe.train.weightDecay,
  });
  const metrics = MetricsLog.open(paths.metrics);
  try {
    const steps = trainingSteps(recipe.train, data, progress);
    const session: TrainSession = { recipe, paths, student, optimizer, data, metrics, progress, loss, batches, steps };
    const leftovers = [...(await recoverStaleSiblings(paths.checkpoints)), ...(await recoverStaleSiblings(paths.root))];
    if (leftovers.length > 0) progress.info(`tidied ${leftovers.length} folder(s) a killed run left half written: ${leftovers.join(', ')}`);
    const resumed = await resumeIfPossible(session);
    const outcome = await trainLoop(session, resumed, hooks);
    progress.stop();
    await student.writeFinal(paths.final);
    return {
      parameters: student.model.parameterCount(),
      steps,
      resumedFromStep: resumed?.step ?? null,
      ...outcome,
      finalDir: paths.final,
    };
  } finally {
    metrics.close();
    optimizer.dispose();
  }
}

/**
 * Resumes from the newest intact checkpoint: one that fails to load (a truncated file, bad JSON) is
 * skipped with a warning for the one before it. A checkpoint trained under other settings is refused,
 * naming them, unless `train.resume` is `force`.
 */
async function resumeIfPossible({ recipe, paths, student, optimizer, data, metrics, progress }: TrainSession): Promise<TrainerState | null> {
  const found = recipe.train.resume === 'never' ? null : await newestIntactCheckpoint(paths.checkpoints, progress);
  if (!found) {
    metrics.truncateAfterStep(-1);
    return null;
  }
  const { entry: latest, checkpoint } = found;
  const state = checkpoint.trainerState as unknown as TrainerState;
  checkResumeSettings(recipe, latest.dir, state, progress);
  restoreParams(student.trainable, checkpoint.params);
  optimizer.loadState(checkpoint.optimizer);
  data.train.setState(state.dataState);
  student.rngState = state.rngState;
  metrics.truncateAfterStep(state.step);
  progress.info(`resuming from ${latest.dir} (step ${state.step})`);
  return state;
}

async function newestIntactCheckpoint(checkpointsDir: string, progress: Progress): Promise<{ entry: CheckpointEntry; checkpoint: Checkpoint } | null> {
  for (const entry of (await listCheckpoints(checkpointsDir)).reverse()) {
    try {
      return { entry, checkpoint: await loadCheckpoint(entry.dir) };
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      progress.warn(`checkpoint ${entry.dir} is damaged (${error.message}); trying the one before it`);
    }
  }
  return null;
}

function checkResumeSettings(recipe: Recipe, dir: string, state: TrainerState, progress: Progress): void {
  const saved = state.settings;
  if (!saved) return; // written before checkpoints recorded their settings
  const changed = changedSettings(saved, resumeSettings(recipe));
  if (changed.length === 0) return;
  const list = changed.join('; ');
  if (recipe.train.resume === 'force') {
    progress.warn(`resuming from ${dir} although the recipe changed ${list} (train.resume: force)`);
    return;
  }
  throw new SlmError(
    `cannot resume from ${dir}: the recipe changed ${list}. Set train.resume: force (or --resume force) to go on with the new settings, or train.resume: never (or another run name) to start over`,
    { code: 'ERR_RESUME_SETTINGS' },
  );
}

/** train.max_steps, or train.epochs turned into steps now that the windows are packed; the progress display learns it. */
function trainingSteps(train: Recipe['train'], data: TextDataset, progress: Progress): number {
  const { windows } = data.stats.train;
  const steps = train.maxSteps ?? stepsForEpochs(train.epochs!, { windows, batchSize: train.batchSize, gradAccum: train.gradAccum });
  if (train.maxSteps === null) {
    progress.info(`train.epochs ${train.epochs}: ${steps.toLocaleString('en')} steps over ${windows.toLocaleString('en')} training windows (batch ${train.batchSize} x ${train.gradAccum})`);
  }
  if (train.warmupSteps > steps) {
    throw new SlmError(`train.warmup_steps: ${train.warmupSteps} exceeds the ${steps} steps train.epochs ${train.epochs} makes of this data`, { code: 'ERR_RECIPE' });
  }
  progress.setTotal(steps);
  return steps;
}

async function trainLoop(
  { recipe, paths, student, optimizer, data, metrics, progress, loss, batches, steps }: TrainSession,
  resumed: TrainerState | null,
  hooks: TrainHooks,
): Promise<Pick<TrainSummary, 'finalLoss' | 'validationLoss' | 'tokensPerSecond'>> {
  const { train } = recipe;
  const startStep = resumed?.step ?? 0;
  if (batches instanceof OnPolicyBatches) batches.drawn = startStep * train.gradAccum;
  const startedAt = performance.now() - (resumed?.elapsedSeconds ?? 0) * 1000;
  const elapsed = () => (performance.now() - startedAt) / 1000;
  const runValidation = async () => {
    if (!data.validation) return null;
    student.setTraining(false);
    const result = await validate(data.validation.batches(train.evalBatches), loss);
    student.setTraining(true);
    return result;
  };
  let last: StepMetrics | null = null;
  let lastValidation: number | null = null;
  let tokensSeen = 0;
  let trainSeconds = 0;

  const afterStep = async (m: StepMetrics) => {
    last = m;
    tokensSeen += m.tokens;
    trainSeconds += m.tokens / m.tokensPerSecond;
    const isLast = m.step === steps;
    const record: MetricsRecord & Record<string, number> = {
      step: m.step,
      loss: m.loss,
      ...m.observed,
      lr: m.lr,
      grad_norm: m.gradNorm,
      tokens_per_second: m.tokensPerSecond,
      elapsed: elapsed(),
    };
    const evalEvery = recipe.eval?.every;
    if (evalEvery && m.step % evalEvery === 0 && !isLast) Object.assign(record, await evaluateDuringTraining(recipe, paths, student, m.step, progress));
    if (m.step % train.evalEvery === 0 || isLast) {
      const result = await runValidation();
      if (result !== null) {
        record.val_loss = lastValidation = result.loss;
        for (const [name, value] of Object.entries(result.observed)) record[`val_${name}`] = value;
        if (result.pairs !== null) record.val_pairs = result.pairs;
      }
    }
    metrics.append(record);
    progress.update({ step: m.step, loss: m.loss, lr: m.lr, tokens: m.tokens });
    if (record.val_loss !== undefined) progress.info(`step ${m.step}: validation loss ${record.val_loss.toFixed(4)}`);
    if (m.step % train.checkpointEvery === 0 || isLast) {
      await saveCheckpoint(checkpointDir(paths.checkpoints, m.step), {
        params: student.trainable,
        optimizer: await optimizer.state(),
        trainerState: { step: m.step, dataState: data.train.getState(), rngState: student.rngState, elapsedSeconds: elapsed(), settings: resumeSettings(recipe) },
        config: student.model.config,
      });
      await pruneCheckpoints(paths.checkpoints, train.keepCheckpoints);
    }
    await hooks.afterStep?.(m);
  };

  student.setTraining(true);
  try {
    await fit(
      student.trainable,
      optimizer,
      batches,
      loss,
      {
        startStep,
        maxSteps: steps,
        gradAccum: train.gradAccum,
        clipGradNorm: train.clipGradNorm,
        schedule: { lr: train.lr, minLrRatio: train.minLrRatio, warmupSteps: train.warmupSteps, maxSteps: steps, schedule: train.schedule },
      },
      { afterStep },
    );
  } catch (error) {
    student.setTraining(false);
    if (!(error instanceof DivergenceError)) throw error;
    const kept = await latestCheckpoint(paths.checkpoints);
    throw new SlmError(`${error.message}; ${kept ? `the last good checkpoint is ${kept.dir}` : 'no checkpoint was written before it'}`, {
      code: error.code,
    });
  }
  student.setTraining(false);
  const finalStep = last as StepMetrics | null;
  return {
    finalLoss: finalStep?.loss ?? null,
    validationLoss: lastValidation,
    tokensPerSecond: trainSeconds > 0 ? tokensSeen / trainSeconds : null,
  };
}
