import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { doctorReport, formatDoctorReport, initBackend } from '../../src/backend/index.ts';

describe('doctorReport', () => {
  it('reports each backend with its reason, the wasm threads and the machine, and restores the backend', async () => {
    await initBackend('cpu');

    const report = await doctorReport();

    expect(report.node).toBe(process.version);
    expect(report.tfjsCore).toBe('4.22.0');
    expect(report.cpus).toBe(availableParallelism());
    expect(report.backends.map((b) => [b.backend, b.status])).toEqual([
      ['tensorflow-gpu', 'not available'],
      ['webgpu', report.webgpu.adapter ? 'loaded' : 'not available'],
      ['tensorflow', 'not available'],
      ['wasm', 'loaded'],
      ['cpu', 'loaded'],
    ]);
    expect(report.backends[0].reason).toMatch(/npm install @tensorflow\/tfjs-node-gpu/);
    expect(report.wasm?.simd).toBe(true);
    expect(report.wasm?.threads).toBe(Math.min(availableParallelism(), 8));
    expect(report.gpu.checks.map((c) => c.source)).toEqual(['nvidia-smi', '/proc/driver/nvidia/gpus', '/dev/nvidia0']);
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('formats one line per fact for humans', async () => {
    const report = await doctorReport();

    const text = formatDoctorReport(report);

    expect(text).toContain(`Node.js    ${process.version}`);
    expect(text).toContain('tfjs-core  4.22.0');
    expect(text).toMatch(/^ {2}tensorflow-gpu +not available +@tensorflow\/tfjs-node-gpu is not installed/m);
    expect(text).toMatch(/^ {2}wasm +loaded +loaded: SIMD, \d+ threads?/m);
    expect(text).toMatch(/^wasm +SIMD yes, \d+ threads?/m);
    expect(text).toMatch(/^threads +training \d+ \([^)]+\), decoding \d+ \([^)]+\); decoding a model whose hidden x intermediate reaches 1,048,576 takes training's$/m);
    expect(text).toMatch(/^GPU +(none visible|visible)/m);
    expect(text).toMatch(/^ {2}\/dev\/nvidia0 +/m);
  });
});
