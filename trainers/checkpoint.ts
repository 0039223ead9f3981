/**
 * A training checkpoint is one directory:
 *   model.safetensors      trainable parameters, F32, under their model names
 *   optimizer.safetensors  AdamW moments as `<name>.exp_avg` / `<name>.exp_avg_sq`, F32; the step in metadata
 *   config.json            whatever config the caller passed (optional)
 *   trainer_state.json     step, data position, RNG state; written last
 * It is assembled under a hidden sibling name and renamed into place, so a directory under a checkpoint's
 * name is always complete.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { FormatError } from '../src/formats/format-error.ts';
import { SafetensorsFile, writeSafetensors, type HostTensor } from '../src/formats/safetensors.ts';
import { removeDirAtomic, replaceDirAtomic, writeJsonAtomic } from '../src/util/atomic.ts';
import { pathExists } from '../src/util/path-exists.ts';
import { readJsonFile } from '../src/util/read-json.ts';
import type { AdamWState } from './optimizer/adamw.ts';

/** A checkpoint file that is missing or malformed; the message starts with its path. */
export class CheckpointError extends FormatError {}

const MODEL_FILE = 'model.safetensors';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const CONFIG_FILE = 'config.json';
const TRAINER_STATE_FILE = 'trainer_state.json';
const EXP_AVG = '.exp_avg';
const EXP_AVG_SQ = '.exp_avg_sq';

/** What the loop needs to resume exactly; any further JSON fields are kept as they are. */
export interface TrainerState {
  /** Optimizer steps taken so far. */
  step: number;
  dataState: unknown;
  rngState: number;
  [key: string]: unknown;
}

export interface CheckpointToSave {
  /** The trainable parameters (frozen base weights belong to the base model, not to checkpoints). */
  params: Map<string, tf.Tensor>;
  optimizer: AdamWState;
  trainerState: TrainerState;
  config?: unknown;
}

export interface Checkpoint {
  params: Map<string, HostTensor>;
  optimizer: AdamWState;
  trainerState: TrainerState;
  config?: unknown;
}

export interface CheckpointEntry {
  dir: string;
  step: number;
}

const CONVENTIONAL_NAME = /^step-(\d+)$/;

/** The conventional place of the checkpoint after `step` updates; zero-padded so names sort by step. */
export function checkpointDir(checkpointsDir: string, step: number): string {
  return join(checkpointsDir, `step-${String(step).padStart(8, '0')}`);
}

/** Writes a checkpoint to `dir`, replacing one already there; a failure leaves no directory under `dir`'s name. */
export async function saveCheckpoint(dir: string, checkpoint: CheckpointToSave): Promise<void> {
  const params = await paramsToHost(checkpoint.params);
  const moments = momentsToHost(checkpoint.optimizer, params);
  await replaceDirAtomic(dir, async (staging) => {
    await writeSafetensors(join(staging, MODEL_FILE), params, { dtype: 'F32' });
    await writeSafetensors(join(staging, OPTIMIZER_FILE), moments, {
      dtype: 'F32',
      metadata: { step: String(checkpoint.optimizer.step) },
    });
    if (checkpoint.config !== undefined) await writeJsonAtomic(join(staging, CONFIG_FILE), checkpoint.config);
    await writeJsonAtomic(join(staging, TRAINER_STATE_FILE), checkpoint.trainerState);
  });
}

/** Reads a checkpoint written by `saveCheckpoint`; errors name the file and what is missing or wrong. */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  const trainerState = await readTrainerState(join(dir, TRAINER_STATE_FILE));
  const params = await readAll(join(dir, MODEL_FILE));
  const optimizer = await readOptimizer(join(dir, OPTIMIZER_FILE), params);
  const configPath = join(dir, CONFIG_FILE);
  const config = (await pathExists(configPath)) ? await readJson(configPath) : undefined;
  return config === undefined ? { params, optimizer, trainerState } : { params, optimizer, trainerState, config };
}

/** Copies loaded parameters into the model's variables; both sides must hold the same names and shapes. */
export function restoreParams(variables: Map<string, tf.Variable>, params: Map<string, HostTensor>): void {
  for (const name of params.keys()) {
    if (!variables.has(name)) throw new Error(`restoreParams: checkpoint holds '${name}', which the model lacks`);
  }
  for (const [name, variable] of variables) {
    const saved = params.get(name);
    if (!saved) throw new Error(`restoreParams: checkpoint lacks parameter '${name}'`);
    if (!tf.util.arraysEqual(saved.shape, variable.shape)) {
      throw new Error(
        `restoreParams: '${name}' has shape [${saved.shape}] in the checkpoint; the model has [${variable.shape}]`,
      );
    }
  }
  for (const [name, variable] of variables) {
    const saved = params.get(name)!;
    tf.tidy(() => variable.assign(tf.tensor(saved.data.slice(), saved.shape, 'float32')));
  }
}

/** Complete checkpoints directly under `checkpointsDir`, oldest first; none when the folder is missing. */
export async function listCheckpoints(checkpointsDir: string): Promise<CheckpointEntry[]> {
  let names: string[];
  try {
    names = await readdir(checkpointsDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const entries: CheckpointEntry[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue; // staging or half-deleted
    const statePath = join(checkpointsDir, name, TRAINER_STATE_FILE);
    if (!(await pathExists(statePath))) continue;
    const step = await readTrainerState(statePath).then(
      (state) => state.step,
      // A damaged state still counts under its conventional name, so loading it reports the damage.
      (error: unknown) => {
        if (!(error instanceof CheckpointError)) throw error;
        const conventional = CONVENTIONAL_NAME.exec(name);
        return conventional ? Number(conventional[1]) : undefined;
      },
    );
    if (step !== undefined) entries.push({ dir: join(checkpointsDir, name), step });
  }
  return entries.sort((a, b) => a.step - b.step || a.dir.localeCompare(b.dir));
}

/** The checkpoint with the highest step, or undefined before the first one is complete. */
export async function latestCheckpoint(checkpointsDir: string): Promise<CheckpointEntry | undefined> {
  return (await listCheckpoints(checkpointsDir)).at(-1);
}

/** Deletes all but the newest `keep` checkpoints; returns the directories removed. */
export async function pruneCheckpoints(checkpointsDir: string, keep: number): Promise<string[]> {
  if (!Number.isInteger(keep) || keep < 0) {
    throw new RangeError(`pruneCheckpoints: keep must be a non-negative integer, got ${keep}`);
  }
  const entries = await listCheckpoints(checkpointsDir);
  const doomed = entries.slice(0, Math.max(0, entries.length - keep)).map((entry) => entry.dir);
  for (const dir of doomed) await removeDirAtomic(dir);
  return doomed;
}

async function paramsToHost(params: Map<string, tf.Tensor>): Promise<HostTensor[]> {
  const host: HostTensor[] = [];
  for (const [name, tensor] of params) {
    if (tensor.dtype !== 'float32') {
      throw new TypeError(`saveCheckpoint: parameter '${name}' has dtype ${tensor.dtype}; expected float32`);
    }
    host.push({ name, shape: tensor.shape, data: (await tensor.data()) as Float32Array });
  }
  return host;
}

/** Moments as tensors shaped like their parameters, named as in PyTorch's AdamW state. */
function momentsToHost(optimizer: AdamWState, params: HostTensor[]): HostTensor[] {
  const shapes = new Map(params.map((p) => [p.name, p.shape]));
  const tensors: HostTensor[] = [];
  for (const [name, { m, v }] of optimizer.moments) {
    const shape = shapes.get(name);
    if (!shape) {
      throw new Error(`saveCheckpoint: optimizer has moments for '${name}', which is not among the params`);
    }
    if (m.length !== tf.util.sizeFromShape(shape) || v.length !== m.length) {
      throw new Error(`saveCheckpoint: moments of '${name}' have ${m.length}/${v.length} values; shape is [${shape}]`);
    }
    tensors.push({ name: name + EXP_AVG, shape, data: m }, { name: name + EXP_AVG_SQ, shape, data: v });
  }
  return tensors;
}

async function readAll(path: string): Promise<Map<string, HostTensor>> {
  const file = await SafetensorsFile.open(path);
  try {
    const tensors = new Map<string, HostTensor>();
    for (const name of file.names()) {
      tensors.set(name, { name, shape: file.info(name).shape, data: await file.read(name) });
    }
    return tensors;
  } finally {
    await file.close();
  }
}

async function readOptimizer(path: string, params: Map<string, HostTensor>): Promise<AdamWState> {
  const file = await SafetensorsFile.open(path);
  try {
    const stepText = file.metadata.step ?? '';
    if (!/^\d+$/.test(stepText)) {
      throw new CheckpointError(path, 'OPTIMIZER', `metadata 'step' must be a non-negative integer, got '${stepText}'`);
    }
    const moments = new Map<string, { m: Float32Array; v: Float32Array }>();
    for (const name of file.names()) {
      const param = momentOwner(file, name, params);
      if (name.endsWith(EXP_AVG)) {
        moments.set(param, { m: await file.read(name), v: await file.read(param + EXP_AVG_SQ) });
      }
    }
    return { step: Number(stepText), moments };
  } finally {
    await file.close();
  }
}

/** The parameter a moment tensor belongs to, checking that its pair exists and the shapes agree. */
function momentOwner(file: SafetensorsFile, name: string, params: Map<string, HostTensor>): string {
  const fail = (detail: string) => new CheckpointError(file.path, 'OPTIMIZER', detail);
  const param = stripSuffix(name, EXP_AVG) ?? stripSuffix(name, EXP_AVG_SQ);
  if (param === null || !file.has(param + EXP_AVG) || !file.has(param + EXP_AVG_SQ)) {
    throw fail(`tensor '${name}' is not one of a '<param>${EXP_AVG}' / '<param>${EXP_AVG_SQ}' pair`);
  }
  const owner = params.get(param);
  if (!owner) throw fail(`moments for '${param}', which ${MODEL_FILE} lacks`);
  const { shape } = file.info(name);
  if (!tf.util.arraysEqual(shape, owner.shape)) {
    throw fail(`'${name}' has shape [${shape}]; '${param}' in ${MODEL_FILE} has [${owner.shape}]`);
  }
  return param;
}

function stripSuffix(name: string, suffix: string): string | null {
  return name.endsWith(suffix) ? name.slice(0, -suffix.length) : null;
}

async function readTrainerState(path: string): Promise<TrainerState> {
  const state = await readJson(path);
  const step = (state as { step?: unknown } | null)?.step;
  if (typeof state !== 'object' || state === null || !Number.isInteger(step) || (step as number) < 0) {
    throw new CheckpointError(path, 'TRAINER_STATE', 'expected an object with a non-negative integer "step"');
  }
  return state as TrainerState;
}

async function readJson(path: string): Promise<unknown> {
  return readJsonFile(path, (problem, detail, cause) => {
    if (problem === 'missing') return new CheckpointError(path, 'MISSING', 'not found: the folder is not a complete checkpoint');
    if (problem === 'invalid') return new CheckpointError(path, 'JSON', 'is not valid JSON', { cause });
    return cause as Error;
  });
}
