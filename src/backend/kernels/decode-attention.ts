import { util, type KernelConfig, type KernelFunc, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** The kernel name of `fusedDecodeAttention` (src/model/fused-ops.ts), registered for wasm only. */
export const DECODE_ATTENTION = 'SlmDecodeAttention';

export interface DecodeAttentionAttrs extends NamedAttrMap {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Dimensions of each head that rotate, pairing i with i + rotaryDim / 2 (rotate_half). */
  rotaryDim: number;
  /** Where this step's key and value are written in the cache buffers: the keys before it are cached. */
  at: number;
  /** Per batch row, the first cached key it sees (left padding, a sliding window). */
  firstKeys: number[];
  /** Gemma 2's attention logit soft cap, or 0 for none (attributes cannot be null). */
  scoreCap: number;
}

interface DecodeAttentionInputs {
  /** [B, (H + 2 KVH) * hd]: this step's projections, heads side by side. */
  qkv: TensorInfo;
  /** [1 or B, (H + 2 KVH) * hd]: rotary tables of `rotaryTables`, queries pre-scaled. */
  cos: TensorInfo;
  sin: TensorInfo;
  /** [B, KVH, capacity, hd]: the layer's cache buffers, written in place at `at`. */
  keys: TensorInfo;
  values: TensorInfo;
}

/**
 * One decoding step of attention for B rows of one new position each: rotates the queries and keys,
 * writes the new key and value into the cache buffers at `at` (in place: only the KV cache holds them),
 * and attends over keys [firstKeys[b], at]. One kernel where the differentiable path runs about thirty
 * ops a layer (split, rotation, transposes, cache concatenation, two batched products, mask, softmax),
 * and no copy of the cache per token. Inference only: it has no gradient. Sums run in double precision.
 * Returns the context [B, H * hd], heads side by side as the output projection reads them.
 */
function decodeAttention(args: { inputs: DecodeAttentionInputs; backend: BackendWasm; attrs: DecodeAttentionAttrs }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { numHeads: H, numKvHeads: KVH, headDim: hd, at } = attrs;
  const B = inputs.qkv.shape[0];
  const capacity = inputs.keys.shape[2];
  const width = (H + 2 * KVH) * hd;
  checkShapes(inputs, attrs, B, width);
  const out = backend.makeOutput([B, H * hd], 'float32');
  // Views after the output's allocation, which may grow (and so detach) the heap.
  const [qkv, cos, sin, keys, values, context] = [inputs.qkv, inputs.cos, inputs.sin, inputs.keys, inputs.values, out].map(
    (t) => backend.typedArrayFromHeap(t) as Float32Array,
  );
  const tableRows = cos.length / width;
  const rotated = new Float32Array(width);
  const scores = new Float64Array(at + 1);
  const partner = rotationPartners(hd, attrs.rotaryDim);
  for (let b = 0; b < B; b++) {
    const table = (tableRows === 1 ? 0 : b) * width;
    for (let head = 0; head < width; head += hd) {
      const [x, t] = [b * width + head, table + head];
      for (let j = 0; j < hd; j++) rotated[head + j] = qkv[x + j] * cos[t + j] + qkv[x + partner[j]] * sin[t + j];
    }
    for (let kvHead = 0; kvHead < KVH; kvHead++) {
      const slot = ((b * KVH + kvHead) * capacity + at) * hd;
      keys.set(rotated.subarray((H + kvHead) * hd, (H + kvHead + 1) * hd), slot);
      values.set(rotated.subarray((H + KVH + kvHead) * hd, (H + KVH + kvHead + 1) * hd), slot);
    }
    const first = Math.min(Math.max(attrs.firstKeys[b] ?? 0, 0), at);
    for (let head = 0; head < H; head++) {
      const cacheStart = (b * KVH + Math.floor(head / (H / KVH))) * capacity * hd;
      attendOneHead(rotated, head * hd, keys, values, cacheStart, first, at, hd, attrs.scoreCap, scores, context, (b * H + head) * hd);
    }
  }
  return out;
}

/**
 * softmax(q . k_s) over keys s in [first, last], and the weighted sum of their values into `context`.
 * Both loops keep four sums in flight (V8 does not vectorize), and the values are read a column at a
 * time so the sums stay in registers: 1.6x the plain loops.
 */
function attendOneHead(
  q: Float32Array,
  qStart: number,
  keys: Float32Array,
  values: Float32Array,
  cacheStart: number,
  first: number,
  last: number,
  hd: number,
  scoreCap: number,
  scores: Float64Array,
  context: Float32Array,
  outStart: number,
): void {
  const wide = hd - (hd % 4);
  let max = -Infinity;
  for (let s = first; s <= last; s++) {
    const k = cacheStart + s * hd;
    let d0 = 0;
    let d1 = 0;
    let d2 = 0;
    let d3 = 0;
    for (let j = 0; j < wide; j += 4) {
      d0 += q[qStart + j] * keys[k + j];
      d1 += q[qStart + j + 1] * keys[k + j + 1];
      d2 += q[qStart + j + 2] * keys[k + j + 2];
      d3 += q[qStart + j + 3] * keys[k + j + 3];
    }
    for (let j = wide; j < hd; j++) d0 += q[qStart + j] * keys[k + j];
    const dot = d0 + d1 + (d2 + d3);
    const score = scoreCap === 0 ? dot : Math.tanh(dot / scoreCap) * scoreCap;
    scores[s] = score;
    if (score > max) max = score;
  }
  let total = 0;
  for (let s = first; s <= last; s++) total += scores[s] = Math.exp(scores[s] - max);
  for (let s = first; s <= last; s++) scores[s] /= total;
  for (let j = 0; j < wide; j += 4) {
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    for (let s = first, v = cacheStart + first * hd + j; s <= last; s++, v += hd) {
      const p = scores[s];
      a0 += p * values[v];
      a1 += p * values[v + 1];
      a2 += p * values[v + 2];
      a3 += p * values[v + 3];
    }
    context[outStart + j] = a0;
    context[outStart + j + 1] = a1;
    context[outStart + j + 2] = a2;
    context[outStart + j + 3] = a3;
  }
  for (let j = wide; j < hd; j++) {
    let sum = 0;
    for (let s = first, v = cacheStart + first * hd + j; s <= last; s++, v += hd) sum += scores[s] * values[v];
    context[outStart + j] = sum;
  }
}

/** For each dimension of a head, the one rotate_half pairs it with (itself past rotaryDim, where sin is 0). */
function rotationPartners(hd: number, rotaryDim: number): Int32Array {
  const half = rotaryDim / 2;
  return Int32Array.from({ length: hd }, (_, j) => (j < half ? j + half : j < rotaryDim ? j - half : j));
}

function checkShapes(inputs: DecodeAttentionInputs, attrs: DecodeAttentionAttrs, B: number, width: number): void {
  const { numKvHeads: KVH, headDim: hd, at } = attrs;
  const { qkv, cos, sin, keys, values } = inputs;
  const tables = util.sizeFromShape(cos.shape);
  const buffers = [keys, values].every((t) => t.shape.length === 4 && t.shape[0] === B && t.shape[1] === KVH && t.shape[3] === hd && t.shape[2] === keys.shape[2]);
  if (
    [qkv, cos, sin, keys, values].some((t) => t.dtype !== 'float32') ||
    qkv.shape.length !== 2 || qkv.shape[1] !== width ||
    (tables !== width && tables !== B * width) || util.sizeFromShape(sin.shape) !== tables ||
    !buffers || !(at >= 0 && at < keys.shape[2])
  ) {
    throw new Error(
      `${DECODE_ATTENTION}: shapes do not fit: qkv [${qkv.shape}] ${qkv.dtype}, cos [${cos.shape}], sin [${sin.shape}], ` +
        `keys [${keys.shape}], values [${values.shape}], position ${at}, ${KVH} kv heads of ${hd}`,
    );
  }
}

export const decodeAttentionConfig: KernelConfig = {
  kernelName: DECODE_ATTENTION,
  backendName: 'wasm',
  kernelFunc: decodeAttention as unknown as KernelFunc,
};
