import {
  Reverse,
  util,
  type KernelConfig,
  type KernelFunc,
  type ReverseAttrs,
  type ReverseInputs,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { offsetOf, wholeBuffer, type HeapValues as Values } from './heap.ts';
import { shareData } from './identity.ts';

/**
 * Reverse for wasm, in JavaScript over the heap. tfjs-backend-wasm 4.22's C++ Reverse took 60 ms to swap
 * the two halves of every rotary head ([8, 256, 16, 2, 16], 1M values); here rows that keep their order
 * move as blocks with `copyWithin`, in about 2 ms.
 */
function reverse(args: { inputs: ReverseInputs; backend: BackendWasm; attrs: ReverseAttrs }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as TensorInfo;
  const axes = util.parseAxisParam(attrs.dims, x.shape).filter((axis) => x.shape[axis] > 1);
  if (axes.length === 0) return shareData(backend, x);
  const out = backend.makeOutput(x.shape, x.dtype);
  // Views only after makeOutput: allocating may grow the wasm heap, which detaches older views.
  const [from, to] = [backend.typedArrayFromHeap(x) as Values, backend.typedArrayFromHeap(out) as Values];
  reverseValues(wholeBuffer(from), offsetOf(from), offsetOf(to), x.shape, axes);
  return out;
}

/** Runs shorter than this copy faster value by value than through a `copyWithin` call. */
const SHORT_RUN = 64;

/** Writes the array at `from` (row-major, `shape`) with `axes` reversed to `to`, both offsets into `heap`. */
export function reverseValues(heap: Values, from: number, to: number, shape: number[], axes: number[]): void {
  const size = util.sizeFromShape(shape);
  if (size === 0) return;
  const { sizes, reversed } = mergeAxes(shape, axes);
  // After merging, axes alternate between reversed and kept. The innermost reversed axis (length
  // `count`) is handled in a loop, with the kept axis inside it (if any) as runs of `run` values; the
  // axes outside are walked with an odometer.
  const innerKept = !reversed[reversed.length - 1];
  const run = innerKept ? sizes[sizes.length - 1] : 1;
  const count = sizes[sizes.length - (innerKept ? 2 : 1)];
  const outer = sizes.slice(0, sizes.length - (innerKept ? 2 : 1));
  const strides = outer.map((_, axis) => util.sizeFromShape(sizes.slice(axis + 1)));
  const index = new Array<number>(outer.length).fill(0);
  for (let start = to; start < to + size; start += count * run) {
    let source = from;
    for (let axis = 0; axis < outer.length; axis++) {
      source += (reversed[axis] ? outer[axis] - 1 - index[axis] : index[axis]) * strides[axis];
    }
    for (let i = 0; i < count; i++) {
      const target = start + i * run;
      const origin = source + (count - 1 - i) * run;
      if (run >= SHORT_RUN) heap.copyWithin(target, origin, origin + run);
      else for (let j = 0; j < run; j++) heap[target + j] = heap[origin + j];
    }
    for (let axis = outer.length - 1; axis >= 0 && ++index[axis] === outer[axis]; axis--) index[axis] = 0;
  }
}

/**
 * Neighbouring axes that are both reversed, or both kept, act as one axis: [M, 2, 16] reversing axis 1
 * stays as it is, [4, 5, 6] reversing axes 0 and 1 becomes [20, 6] reversing axis 0.
 */
export function mergeAxes(shape: number[], axes: number[]): { sizes: number[]; reversed: boolean[] } {
  const sizes: number[] = [];
  const reversed: boolean[] = [];
  shape.forEach((size, axis) => {
    if (size === 1) return;
    const flip = axes.includes(axis);
    if (reversed.length > 0 && reversed[reversed.length - 1] === flip) sizes[sizes.length - 1] *= size;
    else {
      sizes.push(size);
      reversed.push(flip);
    }
  });
  return { sizes, reversed };
}

export const reverseConfig: KernelConfig = {
  kernelName: Reverse,
  backendName: 'wasm',
  kernelFunc: reverse as unknown as KernelFunc,
};
