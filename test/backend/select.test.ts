import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BackendOptionError, BackendUnavailableError, initBackend } from '../../src/backend/index.ts';
import { Rng } from '../../src/util/rng.ts';

// tfjs-node and tfjs-node-gpu are optional dependencies that are not installed on the machines the
// suite runs on, so `auto` must fall through them to wasm.

describe('initBackend', () => {
  it('auto records why each tfjs-node package is unusable, with how to install it, and picks wasm', async () => {
    const report = await initBackend('auto', { threads: 2 });

    expect(report.backend).toBe('wasm');
    expect(report.tfjsName).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(report.attempts.map((a) => [a.backend, a.ok])).toEqual([
      ['tensorflow-gpu', false],
      ['webgpu', false], // no adapter, or only a software one, which auto does not take
      ['tensorflow', false],
      ['wasm', true],
    ]);
    expect(report.attempts[0].reason).toMatch(/@tensorflow\/tfjs-node-gpu is not installed.*npm install @tensorflow\/tfjs-node-gpu/);
    expect(report.attempts[1].reason).toMatch(/only a software adapter|no GPU adapter|webgpu package/);
    expect(report.attempts[2].reason).toMatch(/@tensorflow\/tfjs-node is not installed.*npm install @tensorflow\/tfjs-node\b/);
    expect(report.summary).toMatch(/^wasm \(loaded: .*\); not used: tensorflow-gpu: .*not installed.*; webgpu: .*; tensorflow: .*not installed/);
    expect(report.summary).not.toContain('\n');
  });

  it('runs wasm on more than one thread', async () => {
    const report = await initBackend('wasm', { threads: 2 });

    expect(report.threads).toBe(2);
    expect(report.attempts).toEqual([{ backend: 'wasm', ok: true, reason: 'loaded: SIMD, 2 threads' }]);
  });

  it('computes a threaded matMul equal to a product summed in plain JavaScript', async () => {
    await initBackend('wasm', { threads: 2 });
    const [m, k, n] = [96, 80, 72];
    const rng = new Rng(7);
    const a = Array.from({ length: m * k }, () => rng.normal());
    const b = Array.from({ length: k * n }, () => rng.normal());

    const product = tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n]));
    const values = await product.data();

    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let expected = 0;
        for (let p = 0; p < k; p++) expected += a[i * k + p] * b[p * n + j];
        expect(values[i * n + j]).toBeCloseTo(expected, 3);
      }
    }
  });

  it('throws for an explicit tensorflow that is not installed, and keeps the current backend', async () => {
    await initBackend('wasm', { threads: 2 });

    const failure = initBackend('tensorflow');

    await expect(failure).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(failure).rejects.toThrow(/backend 'tensorflow' is not available: tensorflow: @tensorflow\/tfjs-node is not installed/);
    expect(tf.getBackend()).toBe('wasm');
  });

  it('switches backends on later calls, while the wasm thread count stays what it was first', async () => {
    await initBackend('wasm', { threads: 2 });

    const cpu = await initBackend('cpu');
    expect([cpu.backend, cpu.tfjsName, cpu.threads, tf.getBackend()]).toEqual(['cpu', 'cpu', 1, 'cpu']);

    const again = await initBackend('wasm', { threads: 1 });
    expect([again.backend, again.threads, tf.getBackend()]).toEqual(['wasm', 2, 'wasm']);
    expect(again.attempts[0].reason).toMatch(/already initialized in this process with 2 threads/);
  });

  it('runs overlapping calls one at a time', async () => {
    const reports = await Promise.all([initBackend('cpu'), initBackend('wasm', { threads: 2 }), initBackend('cpu')]);

    expect(reports.map((r) => r.backend)).toEqual(['cpu', 'wasm', 'cpu']);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('rejects an unknown choice or a bad thread count, naming the argument', async () => {
    await expect(initBackend('webgl' as never)).rejects.toThrow(BackendOptionError);
    await expect(initBackend('webgl' as never)).rejects.toThrow(/choice must be one of auto, tensorflow-gpu, webgpu, tensorflow, wasm, cpu; got 'webgl'/);
    await expect(initBackend('wasm', { threads: 0 })).rejects.toThrow(/options\.threads must be a positive integer; got 0/);
    await expect(initBackend('wasm', { threads: 1.5 })).rejects.toThrow(/options\.threads/);
  });
});
