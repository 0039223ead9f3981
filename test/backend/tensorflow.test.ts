import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { describeLoadFailure, loadOptionalPackage, type PackageLoad } from '../../src/backend/optional-package.ts';
import { gpuProblem, tryTensorflow } from '../../src/backend/tensorflow.ts';

const loads = (result: PackageLoad) => async () => result;

describe('loadOptionalPackage', () => {
  it('tells a package that is not installed from one that loads', async () => {
    expect(await loadOptionalPackage('@tensorflow/tfjs-node')).toEqual({ status: 'not-installed' });
    expect(await loadOptionalPackage('@tensorflow/tfjs-node-gpu')).toEqual({ status: 'not-installed' });
    expect((await loadOptionalPackage('yaml')).status).toBe('loaded');
  });
});

describe('describeLoadFailure', () => {
  it('names the shared library the loader could not open', () => {
    const message =
      'libcudnn.so.8: cannot open shared object file: No such file or directory\n    at Module._extensions..node';

    expect(describeLoadFailure('@tensorflow/tfjs-node-gpu', message)).toBe(
      'native library libcudnn.so.8 could not be opened (libcudnn.so.8: cannot open shared object file: No such file or directory)',
    );
  });

  it('explains a missing native addon and how to rebuild it', () => {
    const message = "Cannot find module '/app/node_modules/@tensorflow/tfjs-node/lib/napi-v8/tfjs_binding.node'";

    expect(describeLoadFailure('@tensorflow/tfjs-node', message)).toMatch(
      /native addon tfjs_binding\.node is missing.*run: npm rebuild @tensorflow\/tfjs-node/,
    );
  });

  it('falls back to the first line of any other message', () => {
    expect(describeLoadFailure('p', 'Segmentation fault\nmore')).toBe('loading it failed: Segmentation fault');
  });
});

describe('tryTensorflow', () => {
  it('says how to install a package that is absent', async () => {
    const outcome = await tryTensorflow('tensorflow-gpu', loads({ status: 'not-installed' }));

    expect(outcome.ok).toBe(false);
    expect(outcome.reason).toMatch(/^@tensorflow\/tfjs-node-gpu is not installed \(npm install @tensorflow\/tfjs-node-gpu;.*CUDA 11\.2 and cuDNN 8\.1/);
  });

  it('passes on which CUDA library failed to load', async () => {
    const message = 'libcudart.so.11.0: cannot open shared object file: No such file or directory';

    const outcome = await tryTensorflow('tensorflow-gpu', loads({ status: 'load-failed', message }));

    expect(outcome).toEqual({
      ok: false,
      reason: `@tensorflow/tfjs-node-gpu is installed but native library libcudart.so.11.0 could not be opened (${message})`,
    });
  });

  it('notices a package that loads but registers no tensorflow backend', async () => {
    const outcome = await tryTensorflow('tensorflow', loads({ status: 'loaded', module: {} }));

    expect(outcome.reason).toMatch(/loaded but registered no 'tensorflow' backend .*version 4\.22\.0/);
  });

  it('does not count tfjs-node-gpu without a GPU as tensorflow-gpu, but uses it as tensorflow', async () => {
    // What tfjs-node-gpu registers on a machine whose CUDA libraries did not load.
    class CpuOnlyTensorflowBackend extends tf.KernelBackend {
      readonly isGPUPackage = true;
      readonly isUsingGpuDevice = false;
    }
    tf.registerBackend('tensorflow', () => new CpuOnlyTensorflowBackend());
    const loaded = loads({ status: 'loaded', module: {} });

    const gpu = await tryTensorflow('tensorflow-gpu', loaded);
    const cpu = await tryTensorflow('tensorflow', loaded);

    expect(gpu.ok).toBe(false);
    expect(gpu.reason).toMatch(/tfjs-node-gpu loaded, but TensorFlow found no usable GPU/);
    expect(cpu).toMatchObject({ ok: true, reason: 'loaded: TensorFlow CPU kernels from @tensorflow/tfjs-node-gpu' });
    expect(tf.getBackend()).toBe('tensorflow');
  });
});

describe('gpuProblem', () => {
  it('accepts only a GPU package that found a GPU, and only matters for tensorflow-gpu', () => {
    expect(gpuProblem('tensorflow-gpu', { isGPUPackage: true, isUsingGpuDevice: true })).toBeNull();
    expect(gpuProblem('tensorflow-gpu', { isGPUPackage: true, isUsingGpuDevice: false })).toMatch(/no usable GPU/);
    expect(gpuProblem('tensorflow-gpu', { isGPUPackage: false, isUsingGpuDevice: false })).toMatch(
      /came from @tensorflow\/tfjs-node, loaded earlier, which has no GPU support/,
    );
    expect(gpuProblem('tensorflow', { isGPUPackage: false, isUsingGpuDevice: false })).toBeNull();
  });
});
