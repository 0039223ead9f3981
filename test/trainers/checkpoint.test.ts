import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  checkpointDir,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  pruneCheckpoints,
  restoreParams,
  saveCheckpoint,
  type CheckpointToSave,
  type TrainerState,
} from '../../trainers/checkpoint.ts';
import { AdamW } from '../../trainers/optimizer/adamw.ts';
import { writeSafetensors } from '../../src/formats/safetensors.ts';
import { Rng } from '../../src/util/rng.ts';

const shapes: Record<string, number[]> = {
  'model.layers.0.self_attn.q_proj.weight': [6, 4],
  'model.layers.0.input_layernorm.weight': [4],
  'lm_head.weight': [5, 4],
};

let root: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'slm-checkpoint-test-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Seeded parameters, with values whose bits a lossy round trip would change (-0, a subnormal, the max). */
function makeParams(seed: number): Map<string, tf.Variable> {
  const rng = new Rng(seed);
  const params = new Map<string, tf.Variable>();
  for (const [name, shape] of Object.entries(shapes)) {
    const values = new Float32Array(tf.util.sizeFromShape(shape)).map(() => rng.normal());
    values.set([-0, 1e-40, 3.4028234663852886e38], 0);
    params.set(name, tf.variable(tf.tensor(values, shape)));
  }
  return params;
}

function makeGrads(rng: Rng): Map<string, tf.Tensor> {
  return new Map(
    Object.entries(shapes).map(([name, shape]) => [
      name,
      tf.tensor(Array.from({ length: tf.util.sizeFromShape(shape) }, () => rng.normal()), shape),
    ]),
  );
}

/** `count` AdamW steps on seeded gradients drawn from `rng`. */
function train(optimizer: AdamW, rng: Rng, count: number): void {
  for (let i = 0; i < count; i++) {
    const grads = makeGrads(rng);
    optimizer.step(grads, 1e-2);
    for (const g of grads.values()) g.dispose();
  }
}

function trainerState(step: number, extra: Partial<TrainerState> = {}): TrainerState {
  return { step, dataState: { shard: 2, offset: 17, order: [3, 1, 2] }, rngState: 0xdeadbeef, ...extra };
}

function bits(data: Float32Array): Uint32Array {
  return new Uint32Array(data.buffer, data.byteOffset, data.length);
}

function dispose(params: Map<string, tf.Variable>, optimizer?: AdamW): void {
  optimizer?.dispose();
  for (const p of params.values()) p.dispose();
}

/** A checkpoint of freshly made parameters after `step` AdamW steps. */
async function checkpointAfter(step: number): Promise<{ checkpoint: CheckpointToSave; cleanup: () => void }> {
  const params = makeParams(step + 100);
  const optimizer = new AdamW(params, { lr: 1e-2 });
  train(optimizer, new Rng(step), step);
  const checkpoint = { params, optimizer: await optimizer.state(), trainerState: trainerState(step) };
  return { checkpoint, cleanup: () => dispose(params, optimizer) };
}

describe('checkpointDir', () => {
  it('names a checkpoint by its step, zero-padded so the names sort by step', () => {
    expect(checkpointDir('/out/tiny/checkpoints', 100)).toBe('/out/tiny/checkpoints/step-00000100');
  });
});

describe('saveCheckpoint / loadCheckpoint', () => {
  it('round-trips parameters, moments, trainer state and config bit for bit', async () => {
    const params = makeParams(1);
    const optimizer = new AdamW(params, { lr: 1e-2 });
    train(optimizer, new Rng(2), 3);
    const state = await optimizer.state();
    const config = { model: { hiddenSize: 4 }, lr: 1e-2 };
    const dir = checkpointDir(root, 3);
    await saveCheckpoint(dir, { params, optimizer: state, trainerState: trainerState(3, { note: 'x' }), config });

    expect((await readdir(dir)).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'optimizer.safetensors',
      'trainer_state.json',
    ]);
    const loaded = await loadCheckpoint(dir);
    expect([...loaded.params.keys()]).toEqual([...params.keys()]);
    for (const [name, param] of params) {
      const saved = loaded.params.get(name)!;
      expect(saved.shape).toEqual(param.shape);
      expect(bits(saved.data)).toEqual(bits(param.dataSync() as Float32Array));
    }
    expect(loaded.optimizer.step).toBe(3);
    expect([...loaded.optimizer.moments.keys()]).toEqual([...state.moments.keys()]);
    for (const [name, { m, v }] of state.moments) {
      expect(bits(loaded.optimizer.moments.get(name)!.m)).toEqual(bits(m));
      expect(bits(loaded.optimizer.moments.get(name)!.v)).toEqual(bits(v));
    }
    expect(loaded.trainerState).toEqual(trainerState(3, { note: 'x' }));
    expect(loaded.config).toEqual(config);
    dispose(params, optimizer);
  });

  it('resumes training from a checkpoint exactly where an uninterrupted run would be', async () => {
    const straight = makeParams(1);
    const straightOptimizer = new AdamW(straight, { lr: 1e-2 });
    train(straightOptimizer, new Rng(5), 4);

    const before = makeParams(1);
    const beforeOptimizer = new AdamW(before, { lr: 1e-2 });
    const rng = new Rng(5);
    train(beforeOptimizer, rng, 2);
    await saveCheckpoint(checkpointDir(root, 2), {
      params: before,
      optimizer: await beforeOptimizer.state(),
      trainerState: trainerState(2, { rngState: rng.getState() }),
    });
    dispose(before, beforeOptimizer);

    const loaded = await loadCheckpoint(checkpointDir(root, 2));
    const resumed = makeParams(9);
    restoreParams(resumed, loaded.params);
    const resumedOptimizer = new AdamW(resumed, { lr: 1e-2 });
    resumedOptimizer.loadState(loaded.optimizer);
    const resumedRng = new Rng(0);
    resumedRng.setState(loaded.trainerState.rngState);
    train(resumedOptimizer, resumedRng, 2);

    expect(resumedOptimizer.steps).toBe(4);
    for (const [name, p] of straight) {
      expect(bits(resumed.get(name)!.dataSync() as Float32Array)).toEqual(bits(p.dataSync() as Float32Array));
    }
    dispose(straight, straightOptimizer);
    dispose(resumed, resumedOptimizer);
  });

  it('replaces a checkpoint already under the same name, leaving nothing else behind', async () => {
    const first = await checkpointAfter(1);
    const second = await checkpointAfter(2);
    const dir = join(root, 'latest');
    await saveCheckpoint(dir, first.checkpoint);
    await saveCheckpoint(dir, second.checkpoint);
    expect((await loadCheckpoint(dir)).trainerState.step).toBe(2);
    expect(await readdir(root)).toEqual(['latest']);
    first.cleanup();
    second.cleanup();
  });

  it('leaves no checkpoint under the final name, and the previous one intact, when saving fails midway', async () => {
    const good = await checkpointAfter(1);
    await saveCheckpoint(checkpointDir(root, 1), good.checkpoint);

    // JSON.stringify throws on a BigInt: the failure comes after both safetensors files are written.
    const broken = await checkpointAfter(2);
    const failing = { ...broken.checkpoint, trainerState: trainerState(2, { bad: 1n }) };
    await expect(saveCheckpoint(checkpointDir(root, 2), failing)).rejects.toThrow(/BigInt/);
    await expect(saveCheckpoint(checkpointDir(root, 1), failing)).rejects.toThrow(/BigInt/);

    expect(await readdir(root)).toEqual(['step-00000001']);
    expect(await listCheckpoints(root)).toEqual([{ dir: checkpointDir(root, 1), step: 1 }]);
    const loaded = await loadCheckpoint(checkpointDir(root, 1));
    expect(loaded.trainerState).toEqual(trainerState(1));
    const [name, param] = [...good.checkpoint.params][0];
    expect(bits(loaded.params.get(name)!.data)).toEqual(bits(param.dataSync() as Float32Array));
    good.cleanup();
    broken.cleanup();
  });

  it('rejects optimizer moments for a parameter that is not being saved', async () => {
    const { checkpoint, cleanup } = await checkpointAfter(1);
    const params = new Map([...checkpoint.params].slice(1));
    await expect(saveCheckpoint(join(root, 'x'), { ...checkpoint, params })).rejects.toThrow(
      /optimizer has moments for 'model.layers.0.self_attn.q_proj.weight', which is not among the params/,
    );
    expect(await readdir(root)).toEqual([]);
    cleanup();
  });

  it('rejects an optimizer file whose moments do not pair up with the parameters', async () => {
    const { checkpoint, cleanup } = await checkpointAfter(1);
    const dir = join(root, 'c');
    await saveCheckpoint(dir, checkpoint);
    const data = new Float32Array(4);
    const rewrite = (names: string[], metadata = { step: '1' }) => {
      const tensors = names.map((name) => ({ name, shape: [4], data }));
      return writeSafetensors(join(dir, 'optimizer.safetensors'), tensors, { dtype: 'F32', metadata });
    };

    await rewrite(['model.norm.weight.exp_avg']);
    await expect(loadCheckpoint(dir)).rejects.toThrow(
      /'model.norm.weight.exp_avg' is not one of a '<param>.exp_avg' \/ '<param>.exp_avg_sq' pair/,
    );
    await rewrite(['model.norm.weight.exp_avg', 'model.norm.weight.exp_avg_sq']);
    await expect(loadCheckpoint(dir)).rejects.toThrow(/moments for 'model.norm.weight', which model.safetensors lacks/);
    await rewrite([], { step: '-1' });
    await expect(loadCheckpoint(dir)).rejects.toThrow(
      /optimizer.safetensors: metadata 'step' must be a non-negative integer/,
    );
    cleanup();
  });

  it('names the missing file when a folder is not a complete checkpoint', async () => {
    await mkdir(join(root, 'empty'));
    await expect(loadCheckpoint(join(root, 'empty'))).rejects.toThrow(/trainer_state\.json: not found/);
  });
});

describe('restoreParams', () => {
  it('refuses names or shapes that differ from the model', () => {
    const variables = new Map([['w', tf.variable(tf.zeros([2, 2]))]]);
    const data = new Float32Array(4);
    expect(() => restoreParams(variables, new Map())).toThrow(/checkpoint lacks parameter 'w'/);
    expect(() => restoreParams(variables, new Map([['w', { name: 'w', shape: [4], data }]]))).toThrow(
      /'w' has shape \[4\] in the checkpoint; the model has \[2,2\]/,
    );
    expect(() =>
      restoreParams(
        variables,
        new Map([
          ['w', { name: 'w', shape: [2, 2], data }],
          ['b', { name: 'b', shape: [4], data }],
        ]),
      ),
    ).toThrow(/holds 'b', which the model lacks/);
    variables.get('w')!.dispose();
  });
});

describe('listCheckpoints / pruneCheckpoints', () => {
  it('lists complete checkpoints by step, skipping staging folders and other folders', async () => {
    for (const [name, step] of [['b', 30], ['a', 200], ['step-00000005', 5]] as const) {
      const { checkpoint, cleanup } = await checkpointAfter(0);
      await saveCheckpoint(join(root, name), { ...checkpoint, trainerState: trainerState(step) });
      cleanup();
    }
    await mkdir(join(root, '.a.checkpoint-1-abcd'));
    await writeFile(join(root, '.a.checkpoint-1-abcd', 'trainer_state.json'), '{"step": 999}');
    await mkdir(join(root, 'logs'));
    expect(await listCheckpoints(root)).toEqual([
      { dir: join(root, 'step-00000005'), step: 5 },
      { dir: join(root, 'b'), step: 30 },
      { dir: join(root, 'a'), step: 200 },
    ]);
    expect(await listCheckpoints(join(root, 'missing'))).toEqual([]);
    expect(await latestCheckpoint(root)).toEqual({ dir: join(root, 'a'), step: 200 });
    expect(await latestCheckpoint(join(root, 'missing'))).toBeUndefined();
  });

  it('keeps the newest N', async () => {
    for (const step of [40, 10, 30, 20, 50]) {
      const { checkpoint, cleanup } = await checkpointAfter(0);
      await saveCheckpoint(checkpointDir(root, step), { ...checkpoint, trainerState: trainerState(step) });
      cleanup();
    }
    expect(await pruneCheckpoints(root, 2)).toEqual([10, 20, 30].map((s) => checkpointDir(root, s)));
    expect((await listCheckpoints(root)).map((c) => c.step)).toEqual([40, 50]);
    expect((await readdir(root)).sort()).toEqual(['step-00000040', 'step-00000050']);
    expect(await pruneCheckpoints(root, 5)).toEqual([]);
    expect(await pruneCheckpoints(root, 0)).toHaveLength(2);
    expect(await readdir(root)).toEqual([]);
    await expect(pruneCheckpoints(root, -1)).rejects.toThrow(/keep must be a non-negative integer/);
  });
});
