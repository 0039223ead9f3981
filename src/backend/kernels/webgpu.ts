/**
 * Kernels a training step needs that tfjs-backend-webgpu 4.22 gets wrong. Its Reverse handles at most 4
 * dimensions and throws on the rotary embedding's [B, T, heads, 2, hd / 2]; here the axes are merged first
 * (neighbours that are both kept or both reversed become one), which leaves 3 for rotary, and the stock
 * kernel reverses that view.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Reshape, Reverse, util, type KernelConfig, type KernelFunc, type ReverseAttrs, type TensorInfo } from '@tensorflow/tfjs-core';
import { mergeAxes } from './reverse.ts';

const STOCK_REVERSE_RANK = 4;

function reverseThroughMergedAxes(stock: KernelFunc, reshape: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs.x as TensorInfo;
    if (x.shape.length <= STOCK_REVERSE_RANK) return stock(args);
    const { dims } = args.attrs as unknown as ReverseAttrs;
    const axes = util.parseAxisParam(dims, x.shape).filter((axis) => x.shape[axis] > 1);
    const { sizes, reversed } = mergeAxes(x.shape, axes);
    if (sizes.length > STOCK_REVERSE_RANK) throw new Error(`Reverse on webgpu: axes [${axes}] of shape [${x.shape}] do not merge into ${STOCK_REVERSE_RANK} dimensions`);
    const run = (input: TensorInfo, shape: number[]) => reshape({ inputs: { x: input }, backend: args.backend, attrs: { shape } }) as TensorInfo;
    const merged = run(x, sizes);
    const flipped = stock({ inputs: { x: merged }, backend: args.backend, attrs: { dims: reversed.flatMap((flip, axis) => (flip ? [axis] : [])) } }) as TensorInfo;
    const out = run(flipped, x.shape);
    for (const info of [merged, flipped]) (args.backend as tf.KernelBackend).disposeData(info.dataId);
    return out;
  };
}

/** Replaces the webgpu kernels above; call once the webgpu backend's package is loaded. Safe to call again. */
export function registerWebgpuTrainingKernels(): void {
  const current = tf.getKernel(Reverse, 'webgpu');
  const reshape = tf.getKernel(Reshape, 'webgpu');
  if (!current || !reshape || (current.kernelFunc as { merged?: boolean }).merged) return;
  const kernelFunc = Object.assign(reverseThroughMergedAxes(current.kernelFunc, reshape.kernelFunc), { merged: true });
  tf.unregisterKernel(Reverse, 'webgpu');
  const config: KernelConfig = { kernelName: Reverse, backendName: 'webgpu', kernelFunc, setupFunc: current.setupFunc };
  tf.registerKernel(config);
}
