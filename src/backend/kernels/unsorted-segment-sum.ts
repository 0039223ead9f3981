import {
  UnsortedSegmentSum,
  util,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
  type UnsortedSegmentSumAttrs,
  type UnsortedSegmentSumInputs,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Values = Float32Array | Int32Array;

/**
 * Adds row i of `x` into row ids[i] of `out`, for every i, in one pass over `x`: the gradient of a
 * gather (an embedding lookup) scattered back onto the table. Rows hold `rowSize` values. Ids outside
 * [0, numSegments) are dropped, as the cpu backend drops them. `out` must start zeroed.
 */
export function segmentSum(x: Values, ids: Int32Array, rowSize: number, numSegments: number, out: Values): void {
  for (let i = 0; i < ids.length; i++) {
    const segment = ids[i];
    if (segment < 0 || segment >= numSegments) continue;
    const from = i * rowSize;
    const to = segment * rowSize;
    for (let j = 0; j < rowSize; j++) out[to + j] += x[from + j];
  }
}

function unsortedSegmentSum(args: {
  inputs: UnsortedSegmentSumInputs;
  backend: BackendWasm;
  attrs: UnsortedSegmentSumAttrs;
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x, segmentIds } = inputs;
  const { numSegments } = attrs;
  if (x === undefined || segmentIds === undefined) throw new Error('UnsortedSegmentSum (wasm): needs inputs x and segmentIds');
  checkInputs(x, segmentIds);
  const rowShape = x.shape.slice(segmentIds.shape.length);
  const out = backend.makeOutput([numSegments, ...rowShape], x.dtype);
  // Views only after makeOutput: allocating may grow the wasm heap, which detaches older views.
  const outValues = backend.typedArrayFromHeap(out) as Values;
  outValues.fill(0);
  const ids = backend.typedArrayFromHeap(segmentIds) as Int32Array;
  segmentSum(backend.typedArrayFromHeap(x) as Values, ids, util.sizeFromShape(rowShape), numSegments, outValues);
  return out;
}

function checkInputs(x: TensorInfo, segmentIds: TensorInfo): void {
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum (wasm): x must be float32 or int32, got ${x.dtype}`);
  }
  if (segmentIds.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum (wasm): segmentIds must be int32, got ${segmentIds.dtype}`);
  }
  const prefix = x.shape.slice(0, segmentIds.shape.length);
  if (!util.arraysEqual(prefix, segmentIds.shape)) {
    throw new Error(
      `UnsortedSegmentSum (wasm): segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`,
    );
  }
}

export const unsortedSegmentSumConfig: KernelConfig = {
  kernelName: UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSum as unknown as KernelFunc,
};
