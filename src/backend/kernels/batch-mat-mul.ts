import {
  BatchMatMul,
  broadcast_util,
  util,
  type BatchMatMulAttrs,
  type BatchMatMulInputs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { batchProduct } from './batch-product.ts';
import { heapOffsetOf, offsetOf, wholeBuffer } from './heap.ts';
import { transposeValues } from './transpose.ts';

/**
 * BatchMatMul for wasm that always runs a fast path. tfjs-backend-wasm 4.22 hands a product to XNNPACK
 * only when it is one 2-D product without transposes; batched or transposed products fall to a naive
 * C++ loop at 1-3 GFLOP/s, 10-30x slower (REFERENCE.md, "tfjs backends"). Here a batch with a right
 * matrix per product (attention's) runs in our own kernel (batch-product.ts). Otherwise transposed
 * operands are first copied into row-major order, and a batch runs as one XNNPACK 2-D product per
 * matrix, each reading its matrix in place through a temporary tensor id that points into the batch's
 * memory. So models (and autodiff's gradients, which are transposed products) can use plain `tf.matMul`.
 */
function batchMatMul(args: { inputs: BatchMatMulInputs; backend: BackendWasm; attrs: BatchMatMulAttrs }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const [a, b] = [inputs.a as TensorInfo, inputs.b as TensorInfo];
  if (a.dtype !== 'float32' || b.dtype !== 'float32') {
    throw new Error(`BatchMatMul (wasm): inputs must be float32, got ${a.dtype} and ${b.dtype}`);
  }
  const packed = packedWeights(backend);
  const left = asOperand(a, attrs.transposeA); // [..., M, K]
  const right = packed.rowMajorCopy(asOperand(b, attrs.transposeB)); // [..., K, N]
  if (left.cols !== right.rows) {
    throw new Error(
      `BatchMatMul (wasm): inner dimensions differ: a [${a.shape}] (transposeA ${attrs.transposeA}) and ` +
        `b [${b.shape}] (transposeB ${attrs.transposeB})`,
    );
  }
  const batchShape = broadcast_util.assertAndGetBroadcastShape(left.batchShape, right.batchShape);
  const out = backend.makeOutput([...batchShape, left.rows, right.cols], 'float32');
  if (util.sizeFromShape(out.shape) === 0) return out;
  if (left.cols === 0) {
    backend.typedArrayFromHeap(out).fill(0);
    return out;
  }
  if (ownRightMatrices(left, right, batchShape)) {
    const [aMatrices, bMatrices] = [util.sizeFromShape(left.batchShape), util.sizeFromShape(right.batchShape)];
    const shape = { batch: bMatrices, m: left.rows, k: left.cols, n: right.cols, aMatrices, bMatrices };
    batchProduct(backend, left.info, right.info, out, { ...shape, transposeA: left.transposed, transposeB: right.transposed });
    return out;
  }
  const scratch: TensorInfo[] = [];
  try {
    if (costIfSwapped(left, right, batchShape) < costIfDirect(left, right, packed.packingIsFree(right))) {
      // C^T = op(B)^T op(A)^T: the transposes that op() asks for cancel out; only C^T needs one.
      const outT = allocate(backend, scratch, [...batchShape, right.cols, left.rows]);
      const product = { info: outT, batchShape, rows: right.cols, cols: left.rows, transposed: false };
      multiply(backend, rowMajor(backend, scratch, flip(right)), rowMajor(backend, scratch, flip(left)), product);
      transposeMatrices(backend, outT, out, [util.sizeFromShape(batchShape), right.cols, left.rows]);
    } else {
      const product = { info: out, batchShape, rows: left.rows, cols: right.cols, transposed: false };
      multiply(backend, rowMajor(backend, scratch, left), rowMajor(backend, scratch, right), product);
      packed.noteDirect(right);
    }
  } finally {
    for (const info of scratch) backend.disposeData(info.dataId);
  }
  return out;
}

/**
 * Several right matrices, each used once (attention's products): our own kernel, which packs each for
 * a fraction of XNNPACK's cost and reads transposed operands in place. The left operand holds as many
 * matrices or one. A single right matrix (a weight, or a batch against one weight) stays with XNNPACK,
 * which keeps its packing from call to call.
 */
function ownRightMatrices(left: Operand, right: Operand, batchShape: number[]): boolean {
  const [batch, leftBatch, rightBatch] = [batchShape, left.batchShape, right.batchShape].map((s) => util.sizeFromShape(s));
  return rightBatch > 1 && rightBatch === batch && (leftBatch === batch || leftBatch === 1);
}

/**
 * A batch of matrices op(x) [..., rows, cols]; `transposed` when x holds them as [..., cols, rows] and
 * its data must be transposed before a product can read them.
 */
interface Operand {
  info: TensorInfo;
  batchShape: number[];
  rows: number;
  cols: number;
  transposed: boolean;
}

function asOperand(x: TensorInfo, transposed: boolean): Operand {
  const [r, c] = x.shape.slice(-2);
  return { info: x, batchShape: x.shape.slice(0, -2), rows: transposed ? c : r, cols: transposed ? r : c, transposed };
}

/** The same data read as the transposed matrices. */
function flip(m: Operand): Operand {
  return { ...m, rows: m.cols, cols: m.rows, transposed: !m.transposed };
}

function size(m: Pick<Operand, 'batchShape' | 'rows' | 'cols'>): number {
  return util.sizeFromShape(m.batchShape) * m.rows * m.cols;
}

/**
 * Relative cost per value of the two ways a product reorders memory: a JavaScript transpose (about
 * 1.2 ns a value) and XNNPACK's packing of the right operand, which it redoes for every new right
 * matrix (about 3.5 ns a value, single-threaded; measured on tfjs-backend-wasm 4.22). The cheaper plan
 * for a weight gradient x^T dy depends on which of x and dy is larger.
 */
const TRANSPOSE_COST = 1;
const PACK_COST = 3;

/** C = op(A) op(B): transposed operands are copied, B is packed unless its packing is kept from before. */
function costIfDirect(a: Operand, b: Operand, packingIsFree: boolean): number {
  return TRANSPOSE_COST * ((a.transposed ? size(a) : 0) + (b.transposed ? size(b) : 0)) + (packingIsFree ? 0 : PACK_COST * size(b));
}

/**
 * tfjs-backend-wasm keeps XNNPACK's packed copy of a product's right matrix, keyed by its tensor id, until
 * that tensor is disposed. A weight multiplied again and again (decoding: one row at a time) therefore
 * packs once if it goes to XNNPACK as the right operand; the cost model, which charges packing to every
 * product, would instead copy it transposed on every call (1 GFLOP/s where the kept packing reaches 10).
 * This tracks which right matrices are packed, and lets a matrix already seen as a right operand be packed
 * for keeps while the packed copies this adds stay under a budget of the wasm heap.
 *
 * A matrix used again transposed (a tied output head, x E^T) gets a row-major copy kept beside it, within
 * the same budget, so its products pack once too instead of transposing it on every call: decoding the
 * benchmark model's head went from 1 ms to 0.1 ms a token.
 */
export class PackedWeights<Info extends { dataId: object }> {
  /** Right matrices seen (by data id), and whether their packing is kept. */
  private readonly seen = new WeakMap<object, { packed: boolean }>();
  /** Right matrices seen transposed, and their kept row-major copies, by data id. */
  private readonly seenTransposed = new WeakSet<object>();
  private readonly copies = new Map<object, Info>();
  /** Bytes of kept packings and copies this rule chose, by data id, until their tensors are disposed. */
  private readonly chosen = new Map<object, number>();
  private chosenBytes = 0;

  constructor(
    private readonly budgetBytes: number,
    private readonly copier: { copyRowMajor(m: PackedOperand<Info>): Info; free(copy: Info): void },
  ) {}

  /** Whether a direct product would find `b` packed, or may pack it for keeps now. */
  packingIsFree(b: PackedOperand<Info>): boolean {
    if (!storedAsIs(b)) return false;
    const entry = this.seen.get(b.info.dataId);
    if (entry === undefined) {
      this.seen.set(b.info.dataId, { packed: false });
      return false;
    }
    return entry.packed || this.reserve(b.info.dataId, size(b));
  }

  /** After a direct product: the backend now keeps b's packing if b is one stored matrix. */
  noteDirect(b: PackedOperand<Info>): void {
    if (storedAsIs(b)) this.seen.set(b.info.dataId, { packed: true });
  }

  /** `m`, or its kept row-major copy when m is one stored matrix used transposed before and the budget allows. */
  rowMajorCopy<M extends PackedOperand<Info>>(m: M): M {
    if (!m.transposed || util.sizeFromShape(m.batchShape) !== 1) return m;
    const id = m.info.dataId;
    let copy = this.copies.get(id);
    if (copy === undefined) {
      if (!this.seenTransposed.has(id)) {
        this.seenTransposed.add(id);
        return m;
      }
      if (!this.reserve(id, size(m))) return m;
      copy = this.copier.copyRowMajor(m);
      this.copies.set(id, copy);
    }
    return { ...m, info: copy, transposed: false };
  }

  disposed(dataId: object): void {
    const bytes = this.chosen.get(dataId);
    if (bytes !== undefined) {
      this.chosenBytes -= bytes;
      this.chosen.delete(dataId);
    }
    const copy = this.copies.get(dataId);
    if (copy === undefined) return;
    this.copies.delete(dataId);
    this.copier.free(copy);
  }

  /** Charges `values` float32 values kept for `dataId` to the budget, if they fit. */
  private reserve(dataId: object, values: number): boolean {
    const bytes = values * Float32Array.BYTES_PER_ELEMENT;
    if (this.chosenBytes + bytes > this.budgetBytes) return false;
    this.chosen.set(dataId, (this.chosen.get(dataId) ?? 0) + bytes);
    this.chosenBytes += bytes;
    return true;
  }
}

/** What PackedWeights reads of a right operand. */
export type PackedOperand<Info extends { dataId: object } = { dataId: object }> = Pick<Operand, 'batchShape' | 'rows' | 'cols' | 'transposed'> & { info: Info };

/** One matrix multiplied from its own memory (a view or a transposed copy gets a new id each time). */
function storedAsIs(m: PackedOperand<{ dataId: object }>): boolean {
  return !m.transposed && util.sizeFromShape(m.batchShape) === 1;
}

/**
 * Packings and copies kept by choice: all of a model up to 64M parameters (decoding the benchmark model:
 * 104 -> 224 tokens/s on 1 thread), a bounded share of a large one's pinned uploads beside the memory
 * plan's margin.
 */
const PACKED_WEIGHTS_BUDGET_BYTES = 256 * 1024 * 1024;

const packedWeightsByBackend = new WeakMap<object, PackedWeights<TensorInfo>>();

/** The backend's tracker, which learns of each disposal through its disposeData. */
function packedWeights(backend: BackendWasm): PackedWeights<TensorInfo> {
  let packed = packedWeightsByBackend.get(backend);
  if (packed === undefined) {
    const tracker = new PackedWeights<TensorInfo>(PACKED_WEIGHTS_BUDGET_BYTES, {
      copyRowMajor: (m) => {
        const copy = backend.makeOutput([m.rows, m.cols], 'float32');
        transposeMatrices(backend, m.info, copy, [1, m.cols, m.rows]);
        return copy;
      },
      free: (copy) => backend.disposeData(copy.dataId),
    });
    const dispose = backend.disposeData.bind(backend);
    backend.disposeData = (dataId, force) => {
      const freed = dispose(dataId, force);
      if (freed) tracker.disposed(dataId);
      return freed;
    };
    packedWeightsByBackend.set(backend, tracker);
    packed = tracker;
  }
  return packed;
}

/** C^T = op(B)^T op(A)^T: untransposed operands are copied, A is packed, and C^T is transposed back. */
function costIfSwapped(a: Operand, b: Operand, batchShape: number[]): number {
  const product = util.sizeFromShape(batchShape) * a.rows * b.cols;
  const copies = (a.transposed ? 0 : size(a)) + (b.transposed ? 0 : size(b)) + product;
  return TRANSPOSE_COST * copies + PACK_COST * size(a);
}

/** The operand's matrices in row-major order: its own data, or a transposed copy in `scratch`. */
function rowMajor(backend: BackendWasm, scratch: TensorInfo[], m: Operand): Operand {
  if (!m.transposed) return m;
  const copy = allocate(backend, scratch, [...m.batchShape, m.rows, m.cols]);
  transposeMatrices(backend, m.info, copy, [util.sizeFromShape(m.batchShape), m.cols, m.rows]);
  return { ...m, info: copy, transposed: false };
}

function allocate(backend: BackendWasm, scratch: TensorInfo[], shape: number[]): TensorInfo {
  const info = backend.makeOutput(shape, 'float32');
  scratch.push(info);
  return info;
}

/** Writes the [batch, rows, cols] matrices of `from` transposed to `to`. */
function transposeMatrices(backend: BackendWasm, from: TensorInfo, to: TensorInfo, shape: number[]): void {
  const [fromView, toView] = [backend.typedArrayFromHeap(from), backend.typedArrayFromHeap(to)];
  transposeValues(wholeBuffer(fromView), offsetOf(fromView), offsetOf(toView), shape, [0, 2, 1]);
}

/**
 * Tensor ids for the temporary views, far above the ids tfjs hands out (one per tensor, counting up
 * from 1). Each is registered with the C++ side only for the duration of one native product.
 */
const VIEW_IDS = { left: 0x7ffffffd, right: 0x7ffffffe, out: 0x7fffffff } as const;

/** out = left @ right for row-major operands, one native 2-D product per output matrix. */
function multiply(backend: BackendWasm, left: Operand, right: Operand, out: Operand): void {
  const batch = util.sizeFromShape(out.batchShape);
  const [leftBatch, rightBatch] = [util.sizeFromShape(left.batchShape), util.sizeFromShape(right.batchShape)];
  const native = nativeMatMul(backend);
  if (rightBatch === 1 && leftBatch === batch) {
    // One shared right matrix: the whole batch is one product [batch * M, K] x [K, N].
    const [leftId, rightId, outId] = [left, right, out].map((m) => tensorId(backend, m.info));
    native(leftId, batch * left.rows, left.cols, rightId, right.cols, outId);
    return;
  }
  for (let i = 0; i < batch; i++) {
    const leftId = view(backend, left, broadcastIndex(i, out.batchShape, left.batchShape), VIEW_IDS.left);
    const rightId = view(backend, right, broadcastIndex(i, out.batchShape, right.batchShape), VIEW_IDS.right);
    const outId = view(backend, out, i, VIEW_IDS.out);
    try {
      native(leftId, left.rows, left.cols, rightId, right.cols, outId);
    } finally {
      // Disposing a view id also drops the XNNPACK operator cached for it, so a reused id never sees
      // another matrix's packed weights.
      for (const id of Object.values(VIEW_IDS)) backend.wasm.tfjs.disposeData(id);
    }
  }
}

function tensorId(backend: BackendWasm, info: TensorInfo): number {
  return backend.dataIdMap.get(info.dataId)!.id;
}

/** Matrix `index` of m as a tensor id of its own: m's id when m holds only one matrix. */
function view(backend: BackendWasm, m: Operand, index: number, viewId: number): number {
  if (util.sizeFromShape(m.batchShape) === 1) return tensorId(backend, m.info);
  const matrixSize = m.rows * m.cols;
  backend.wasm.tfjs.registerTensor(viewId, matrixSize, heapOffsetOf(backend, m.info) + index * matrixSize * Float32Array.BYTES_PER_ELEMENT);
  return viewId;
}

/** Flat index into a batch of shape `shape` of the flat output batch index `i`, with broadcasting. */
export function broadcastIndex(i: number, outShape: number[], shape: number[]): number {
  let index = 0;
  let stride = 1;
  let rest = i;
  for (let axis = outShape.length - 1, own = shape.length - 1; axis >= 0; axis--, own--) {
    const coordinate = rest % outShape[axis];
    rest = Math.floor(rest / outShape[axis]);
    if (own < 0) continue;
    if (shape[own] !== 1) index += coordinate * stride;
    stride *= shape[own];
  }
  return index;
}

/** The backend's own export: [1, M, K] x [1, K, N] without transposes is its XNNPACK path. */
export type NativeMatMul = (leftId: number, m: number, k: number, rightId: number, n: number, outId: number) => void;

type CwrappedMatMul = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: number,
  transposeB: number,
  outId: number,
) => void;

const natives = new WeakMap<object, NativeMatMul>();

function nativeMatMul(backend: BackendWasm): NativeMatMul {
  let native = natives.get(backend.wasm);
  if (native === undefined) {
    const module = backend.wasm as unknown as { cwrap: (name: string, ret: null, args: string[]) => CwrappedMatMul };
    const argTypes = ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number'];
    const call = module.cwrap(BatchMatMul, null, argTypes);
    // cwrap copies an 'array' argument onto the wasm stack at each call, so the shapes' buffers are reused:
    // [1, m, k] and [1, k, n], their batch of 1 set once.
    const [leftShape, rightShape] = [Int32Array.of(1, 0, 0), Int32Array.of(1, 0, 0)];
    const [leftBytes, rightBytes] = [new Uint8Array(leftShape.buffer), new Uint8Array(rightShape.buffer)];
    native = refusingXnnFailures((leftId, m, k, rightId, n, outId) => {
      leftShape[1] = m;
      leftShape[2] = k;
      rightShape[1] = k;
      rightShape[2] = n;
      call(leftId, leftBytes, 3, rightId, rightBytes, 3, 0, 0, outId);
    });
    natives.set(backend.wasm, native);
  }
  return native;
}

const fs = createRequire(import.meta.url)('node:fs') as { writeSync: (fd: number, data: unknown, ...rest: unknown[]) => number };

/**
 * tfjs-backend-wasm only prints a line (to file descriptor 2, through `fs.writeSync`) when XNNPACK cannot
 * create or set up a product, status 6 being out of memory, and returns with the output unwritten: a wrong
 * result, silently (seen when a crowded heap could not hold a weight's packed copy). Such a line becomes an
 * error here, which the wasm kernel guard reports as the backend running out of memory.
 */
export function refusingXnnFailures(native: NativeMatMul): NativeMatMul {
  return (...args) => {
    const write = fs.writeSync;
    let failure: string | null = null;
    fs.writeSync = (fd, data, ...rest) => {
      if (fd === 2 && typeof data === 'string' && data.includes('XNN status')) {
        failure = data.trim();
        return data.length;
      }
      return write.call(fs, fd, data, ...rest);
    };
    try {
      native(...args);
    } finally {
      fs.writeSync = write;
    }
    if (failure !== null) throw new Error(`out of memory: XNNPACK could not run a product (${failure})`);
  };
}

export const batchMatMulConfig: KernelConfig = {
  kernelName: BatchMatMul,
  backendName: 'wasm',
  kernelFunc: batchMatMul as unknown as KernelFunc,
};
