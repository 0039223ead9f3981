import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { clipByGlobalNorm, globalNorm } from '../../trainers/clip.ts';
import { Rng } from '../../src/util/rng.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const shapes: Record<string, number[]> = { 'a.weight': [7, 5], 'a.bias': [5], 'norm.weight': [3, 2, 4] };

/** Gradients of the shapes above with entries N(0, scale^2), and the same values on the host. */
function makeGrads(seed: number, scale: number): { grads: Map<string, tf.Tensor>; host: Map<string, number[]> } {
  const rng = new Rng(seed);
  const host = new Map<string, number[]>();
  const grads = new Map<string, tf.Tensor>();
  for (const [name, shape] of Object.entries(shapes)) {
    const values = Array.from({ length: tf.util.sizeFromShape(shape) }, () => Math.fround(rng.normal() * scale));
    host.set(name, values);
    grads.set(name, tf.tensor(values, shape));
  }
  return { grads, host };
}

function hostNorm(host: Map<string, number[]>): number {
  let sum = 0;
  for (const values of host.values()) for (const x of values) sum += x * x;
  return Math.sqrt(sum);
}

function disposeAll(maps: Map<string, tf.Tensor>[]): void {
  for (const map of maps) for (const t of map.values()) t.dispose();
}

describe('globalNorm', () => {
  it('is the 2-norm of all entries of all gradients', async () => {
    const { grads, host } = makeGrads(1, 3);
    expect(Math.abs((await globalNorm(grads)) / hostNorm(host) - 1)).toBeLessThan(1e-6);
    disposeAll([grads]);
  });

  it('is 0 for no gradients', async () => {
    expect(await globalNorm(new Map())).toBe(0);
  });
});

describe('clipByGlobalNorm', () => {
  it('scales by maxNorm / (norm + 1e-6) when the norm is above maxNorm', async () => {
    const { grads, host } = makeGrads(2, 10);
    const expectedNorm = hostNorm(host);
    const { grads: clipped, norm } = await clipByGlobalNorm(grads, 1);
    expect(Math.abs(norm / expectedNorm - 1)).toBeLessThan(1e-6);
    const scale = 1 / (expectedNorm + 1e-6);
    for (const [name, values] of host) {
      const actual = clipped.get(name)!.dataSync();
      values.forEach((x, i) => expect(Math.abs(actual[i] - x * scale)).toBeLessThan(1e-6));
    }
    expect(await globalNorm(clipped)).toBeCloseTo(1, 5);
    disposeAll([grads, clipped]);
  });

  it('returns the gradients unchanged when the norm is within maxNorm', async () => {
    const { grads, host } = makeGrads(3, 0.01);
    const { grads: clipped, norm } = await clipByGlobalNorm(grads, 5);
    expect(Math.abs(norm / hostNorm(host) - 1)).toBeLessThan(1e-6);
    for (const [name, values] of host) expect(Array.from(clipped.get(name)!.dataSync())).toEqual(values);
    disposeAll([grads, clipped]);
  });

  it('leaves gradients unscaled and reports a non-finite norm', async () => {
    const grads = new Map([['x', tf.tensor([1, Infinity, 2])]]);
    const { grads: clipped, norm } = await clipByGlobalNorm(grads, 1);
    expect(norm).toBe(Infinity);
    expect(Array.from(clipped.get('x')!.dataSync())).toEqual([1, Infinity, 2]);
    disposeAll([grads, clipped]);
  });

  it('hands back tensors the caller owns, leaving nothing else behind', async () => {
    const { grads } = makeGrads(4, 10);
    const before = tf.memory().numTensors;
    const { grads: clipped } = await clipByGlobalNorm(grads, 1);
    expect(tf.memory().numTensors).toBe(before + clipped.size);
    disposeAll([clipped]);
    const { grads: cloned } = await clipByGlobalNorm(grads, 1e9);
    disposeAll([grads]);
    expect(cloned.get('a.bias')!.dataSync().length).toBe(5); // still readable after the inputs are gone
    disposeAll([cloned]);
    expect(tf.memory().numTensors).toBe(before - grads.size);
  });

  it('rejects a maxNorm that is not positive', async () => {
    await expect(clipByGlobalNorm(new Map(), 0)).rejects.toThrow(/maxNorm must be > 0, got 0/);
    await expect(clipByGlobalNorm(new Map(), Number.NaN)).rejects.toThrow(/maxNorm must be > 0/);
  });
});
