import {
  Transpose,
  util,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
  type TransposeAttrs,
  type TransposeInputs,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { offsetOf, wholeBuffer, type HeapValues as Values } from './heap.ts';
import { shareData } from './identity.ts';

/**
 * Transpose for wasm, in JavaScript over the heap. tfjs-backend-wasm 4.22's C++ Transpose walks every
 * value through generic index arithmetic: 5 ms for [2048, 256], the size of every activation whose
 * transpose a linear layer's weight gradient needs (0.6 ms here). The permutation is first reduced to
 * its smallest equivalent form, so the common cases become copies of whole rows ([B, T, H, hd] ->
 * [B, H, T, hd]) or tiled 2-D transposes ([N, R, C] -> [N, C, R]).
 */
function transpose(args: { inputs: TransposeInputs; backend: BackendWasm; attrs: TransposeAttrs }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as TensorInfo;
  const outShape = attrs.perm.map((axis) => x.shape[axis]);
  if (isIdentity(reduceTranspose(x.shape, attrs.perm).perm)) return { ...shareData(backend, x), shape: outShape };
  const out = backend.makeOutput(outShape, x.dtype);
  // Views only after makeOutput: allocating may grow the wasm heap, which detaches older views.
  const [from, to] = [backend.typedArrayFromHeap(x) as Values, backend.typedArrayFromHeap(out) as Values];
  transposeValues(wholeBuffer(from), offsetOf(from), offsetOf(to), x.shape, attrs.perm);
  return out;
}

/**
 * Writes the array at `from` (row-major, `shape`) permuted by `perm` to `to`, both offsets into `heap`:
 * output axis i is input axis perm[i]. Shared with the BatchMatMul kernel, which transposes operands
 * before its 2-D products.
 */
export function transposeValues(heap: Values, from: number, to: number, shape: number[], perm: number[]): void {
  const size = util.sizeFromShape(shape);
  if (size === 0) return;
  const reduced = reduceTranspose(shape, perm);
  const rank = reduced.shape.length;
  if (isIdentity(reduced.perm)) {
    heap.copyWithin(to, from, from + size);
  } else if (reduced.perm[rank - 1] === rank - 1) {
    copyRows(heap, from, to, reduced.shape, reduced.perm);
  } else if (isBatchedMatrixTranspose(reduced.perm)) {
    const [rows, cols] = reduced.shape.slice(-2);
    const batch = util.sizeFromShape(reduced.shape.slice(0, -2));
    for (let b = 0; b < batch; b++) transposeMatrix(heap, from + b * rows * cols, to + b * rows * cols, rows, cols);
  } else {
    copyElements(heap, from, to, reduced.shape, reduced.perm);
  }
}

/**
 * The smallest transpose that moves the same memory: size-1 axes dropped, and axes that stay neighbours
 * in the same order merged. [B, T, H, hd] by [0, 2, 3, 1] becomes [B, T, H*hd] by [0, 2, 1].
 */
export function reduceTranspose(shape: number[], perm: number[]): { shape: number[]; perm: number[] } {
  const kept = perm.filter((axis) => shape[axis] !== 1); // input axes in output order
  const groups: number[][] = [];
  for (const axis of kept) {
    const last = groups[groups.length - 1];
    if (last !== undefined && last[last.length - 1] + 1 === axis) last.push(axis);
    else groups.push([axis]);
  }
  const inputOrder = groups.map((_, g) => g).sort((g, h) => groups[g][0] - groups[h][0]);
  const reducedShape = inputOrder.map((g) => groups[g].reduce((size, axis) => size * shape[axis], 1));
  const reducedPerm = groups.map((_, g) => inputOrder.indexOf(g));
  return { shape: reducedShape, perm: reducedPerm };
}

function isIdentity(perm: number[]): boolean {
  return perm.every((axis, i) => axis === i);
}

function isBatchedMatrixTranspose(perm: number[]): boolean {
  const rank = perm.length;
  return rank >= 2 && perm[rank - 1] === rank - 2 && perm[rank - 2] === rank - 1 && isIdentity(perm.slice(0, -2));
}

/** The innermost axis stays innermost: whole rows of shape[rank-1] values move as blocks. */
function copyRows(heap: Values, from: number, to: number, shape: number[], perm: number[]): void {
  const rank = shape.length;
  const rowLength = shape[rank - 1];
  const rows = util.sizeFromShape(shape) / rowLength;
  const strides = util.computeStrides(shape);
  const outerShape = perm.slice(0, -1).map((axis) => shape[axis]);
  const outerStrides = perm.slice(0, -1).map((axis) => strides[axis]);
  const index = new Array<number>(rank - 1).fill(0);
  let start = from;
  for (let row = 0; row < rows; row++) {
    heap.copyWithin(to + row * rowLength, start, start + rowLength);
    start = advance(index, outerShape, outerStrides, start);
  }
}

/** Any other permutation: element by element, in output order. */
function copyElements(heap: Values, from: number, to: number, shape: number[], perm: number[]): void {
  const strides = util.computeStrides(shape);
  strides.push(1);
  const outShape = perm.map((axis) => shape[axis]);
  const outStrides = perm.map((axis) => strides[axis]);
  const index = new Array<number>(shape.length).fill(0);
  const size = util.sizeFromShape(shape);
  let start = from;
  for (let i = 0; i < size; i++) {
    heap[to + i] = heap[start];
    start = advance(index, outShape, outStrides, start);
  }
}

/** Steps a multi-index (odometer order) and returns the matching flat input position. */
function advance(index: number[], shape: number[], strides: number[], position: number): number {
  for (let axis = index.length - 1; axis >= 0; axis--) {
    if (++index[axis] < shape[axis]) return position + strides[axis];
    index[axis] = 0;
    position -= (shape[axis] - 1) * strides[axis];
  }
  return position;
}

/** Columns per band: a band of 4 input rows and its 64 output rows stay in the L1 cache. */
const BAND_COLUMNS = 64;

/**
 * to[c, r] = from[r, c] for one [rows, cols] matrix, in 4x4 tiles held in locals: each tile reads four
 * runs of 4 and writes four runs of 4. About 1.2 ns a value, twice as fast as moving one value at a
 * time (JavaScript has no SIMD to do better).
 */
function transposeMatrix(heap: Values, from: number, to: number, rows: number, cols: number): void {
  const fullRows = rows - (rows % 4);
  const fullCols = cols - (cols % 4);
  for (let c0 = 0; c0 < fullCols; c0 += BAND_COLUMNS) {
    const c1 = Math.min(c0 + BAND_COLUMNS, fullCols);
    for (let r = 0; r < fullRows; r += 4) {
      const f0 = from + r * cols;
      const f1 = f0 + cols;
      const f2 = f1 + cols;
      const f3 = f2 + cols;
      for (let c = c0; c < c1; c += 4) {
        const a0 = heap[f0 + c], a1 = heap[f0 + c + 1], a2 = heap[f0 + c + 2], a3 = heap[f0 + c + 3];
        const b0 = heap[f1 + c], b1 = heap[f1 + c + 1], b2 = heap[f1 + c + 2], b3 = heap[f1 + c + 3];
        const d0 = heap[f2 + c], d1 = heap[f2 + c + 1], d2 = heap[f2 + c + 2], d3 = heap[f2 + c + 3];
        const e0 = heap[f3 + c], e1 = heap[f3 + c + 1], e2 = heap[f3 + c + 2], e3 = heap[f3 + c + 3];
        let t = to + c * rows + r;
        heap[t] = a0; heap[t + 1] = b0; heap[t + 2] = d0; heap[t + 3] = e0; t += rows; // prettier-ignore
        heap[t] = a1; heap[t + 1] = b1; heap[t + 2] = d1; heap[t + 3] = e1; t += rows; // prettier-ignore
        heap[t] = a2; heap[t + 1] = b2; heap[t + 2] = d2; heap[t + 3] = e2; t += rows; // prettier-ignore
        heap[t] = a3; heap[t + 1] = b3; heap[t + 2] = d3; heap[t + 3] = e3; // prettier-ignore
      }
    }
  }
  // The last rows % 4 rows, and the last cols % 4 columns of the others.
  for (let r = fullRows; r < rows; r++) for (let c = 0; c < cols; c++) heap[to + c * rows + r] = heap[from + r * cols + c];
  for (let r = 0; r < fullRows; r++) for (let c = fullCols; c < cols; c++) heap[to + c * rows + r] = heap[from + r * cols + c];
}

export const transposeConfig: KernelConfig = {
  kernelName: Transpose,
  backendName: 'wasm',
  kernelFunc: transpose as unknown as KernelFunc,
};
