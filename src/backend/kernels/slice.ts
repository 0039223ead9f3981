import {
  Slice,
  SplitV,
  Unpack,
  backend_util,
  slice_util,
  util,
  type KernelConfig,
  type KernelFunc,
  type SliceAttrs,
  type SliceInputs,
  type SplitVAttrs,
  type SplitVInputs,
  type TensorInfo,
  type UnpackAttrs,
  type UnpackInputs,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { offsetOf, wholeBuffer } from './heap.ts';

/**
 * Slice, Unpack and SplitV for wasm that read their input through a view of the wasm heap.
 * tfjs-backend-wasm 4.22's own Slice copies the WHOLE input out of the heap (`readSync`) for every slice,
 * so unstacking [64, 256, 256] into 64 matrices copies 64 x 16 MiB: half a second per unstack, most of a
 * training step. Its SplitV calls that Slice directly, once per piece.
 */
function copySlice(backend: BackendWasm, x: TensorInfo, begin: number[], size: number[], out: TensorInfo): void {
  // Views only after makeOutput: allocating may grow the wasm heap, which detaches older views.
  const from = backend.typedArrayFromHeap(x);
  const to = backend.typedArrayFromHeap(out);
  const strides = util.computeStrides(x.shape);
  const rank = x.shape.length;
  if (rank === 0 || slice_util.isSliceContinous(x.shape, begin, size)) {
    const start = slice_util.computeFlatOffset(begin, strides);
    to.set(from.subarray(start, start + util.sizeFromShape(size)));
    return;
  }
  // Rows move within the heap with copyWithin: no view per row (see heap.ts).
  const heap = wholeBuffer(from);
  const [fromStart, toStart] = [offsetOf(from), offsetOf(to)];
  const rowLength = size[rank - 1];
  const rows = util.sizeFromShape(size) / rowLength;
  const index = new Array(rank - 1).fill(0); // position among the rows, last axis excluded
  for (let row = 0; row < rows; row++) {
    let start = fromStart + begin[rank - 1];
    for (let axis = 0; axis < rank - 1; axis++) start += (begin[axis] + index[axis]) * strides[axis];
    heap.copyWithin(toStart + row * rowLength, start, start + rowLength);
    for (let axis = rank - 2; axis >= 0 && ++index[axis] === size[axis]; axis--) index[axis] = 0;
  }
}

function slice(args: { inputs: SliceInputs; backend: BackendWasm; attrs: SliceAttrs }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as TensorInfo;
  const [begin, size] = slice_util.parseSliceParams(x as never, attrs.begin, attrs.size);
  const out = backend.makeOutput(size, x.dtype);
  if (util.sizeFromShape(size) > 0) copySlice(backend, x, begin, size, out);
  return out;
}

function unpack(args: { inputs: UnpackInputs; backend: BackendWasm; attrs: UnpackAttrs }): TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const x = inputs.value as TensorInfo;
  const axis = attrs.axis < 0 ? attrs.axis + x.shape.length : attrs.axis;
  const outShape = x.shape.filter((_, i) => i !== axis);
  const size = x.shape.slice();
  size[axis] = 1;
  const begin = new Array(x.shape.length).fill(0);
  return Array.from({ length: x.shape[axis] }, (_, i) => {
    begin[axis] = i;
    const out = backend.makeOutput(outShape, x.dtype);
    if (util.sizeFromShape(outShape) > 0) copySlice(backend, x, begin, size, out);
    return out;
  });
}

/** Split along one axis into pieces of the given sizes. */
function splitV(args: { inputs: SplitVInputs; backend: BackendWasm; attrs: SplitVAttrs }): TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as TensorInfo;
  const axis = util.parseAxisParam(attrs.axis, x.shape)[0];
  const sizes = backend_util.prepareSplitSize(x as never, attrs.numOrSizeSplits, axis);
  const begin = new Array(x.shape.length).fill(0);
  return sizes.map((pieceSize) => {
    const size = x.shape.slice();
    size[axis] = pieceSize;
    const out = backend.makeOutput(size, x.dtype);
    if (util.sizeFromShape(size) > 0) copySlice(backend, x, begin, size, out);
    begin[axis] += pieceSize;
    return out;
  });
}

export const sliceConfig: KernelConfig = { kernelName: Slice, backendName: 'wasm', kernelFunc: slice as unknown as KernelFunc };
export const unpackConfig: KernelConfig = { kernelName: Unpack, backendName: 'wasm', kernelFunc: unpack as unknown as KernelFunc };
export const splitVConfig: KernelConfig = { kernelName: SplitV, backendName: 'wasm', kernelFunc: splitV as unknown as KernelFunc };
