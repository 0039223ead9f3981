/**
 * What a model run will occupy, worked out from the config before any weight is read: the base's weights
 * as they will be held, what trains and its optimizer state, activations for batch x seq_len (with or
 * without recomputation), the logits of the loss, and the KV cache of a generation. Each item is host
 * memory or backend memory; the plan compares the peaks with what the backend and the host can hold and
 * names the biggest consumer and the knobs that shrink it.
 *
 * Backend figures are float32 bytes of live tensors at the peak, which comes at the end of the forward pass
 * (every activation kept for the backward pass) or, with recomputation, while the backward pass recomputes
 * one layer. The per-layer coefficients count the tensors this project's layers keep (see layers.ts and
 * causal-attention.ts); `slm-train bench --shape` checks them against measured peaks.
 */
import type { BackendCapacity } from '../backend/capacity.ts';
import { formatSize } from '../util/format-size.ts';
import { countParameters, type ModelConfig } from './config.ts';
import { loraModules, type LoraConfig } from './lora-config.ts';
import { UPLOAD_VALUES } from './frozen-weights.ts';
import { parameterSpecs } from './parameters.ts';

const F32 = 4;
/** Node, tfjs and the wasm module themselves, measured at start-up with no tensor (host RSS). */
const PROCESS_BASELINE_BYTES = 0.35 * 2 ** 30;

export interface TrainingShape {
  batchSize: number;
  seqLen: number;
  /** LoRA adapters on a frozen base, or null when every weight trains (a scratch model). */
  lora: LoraConfig | null;
  recompute: boolean;
  /** The loss needs the full [N, V] logits (distillation); plain CE through a streamed head does not. */
  fullLogits: boolean;
}

export interface PlanRequest {
  config: ModelConfig;
  residency: 'resident' | 'streamed';
  /** Host bytes of the base as stored (compact); null for a model made in memory. */
  storedBytes: number | null;
  /** Backend bytes streamed weights may stay in between uses. */
  pinBytes: number;
  training?: TrainingShape;
  /** A generation: rows decoded together and the positions each reaches. */
  generation?: { batchSize: number; positions: number };
  capacity: BackendCapacity;
  hostBytes: number;
}

export interface PlanItem {
  item: string;
  where: 'host' | 'backend';
  bytes: number;
  detail: string;
}

export interface MemoryPlan {
  items: PlanItem[];
  backendPeak: number;
  hostPeak: number;
  capacity: BackendCapacity;
  hostCapacity: number;
  fits: boolean;
  /** The backend item that takes the most, and what shrinks it. */
  biggest: PlanItem;
  knobs: string[];
}

export interface TrainingMemoryRequest {
  config: ModelConfig;
  storedBytes: number | null;
  residency: 'resident' | 'streamed';
  batchSize: number;
  seqLen: number;
  lora: LoraConfig | null;
  fullLogits: boolean;
  /** auto: on when the base is streamed or the plan without it does not fit. */
  recompute: 'auto' | boolean;
  capacity: BackendCapacity;
  hostBytes: number;
}

export interface TrainingMemory {
  plan: MemoryPlan;
  residency: 'resident' | 'streamed';
  recompute: boolean;
  /**
   * Backend bytes streamed weights may stay uploaded in: none while training. Measured on Llama-3.2-1B
   * (1 x 512, wasm, 2 threads): with 1.3 GiB pinned a step took 119 s, without 109-118 s (uploads are a
   * small share of a step), and pinned weights between short-lived tensors grew the wasm heap to 3.8 GiB
   * around 2.4 GiB of live tensors, the process to 6.6 GiB for a 2.3 GiB base (4.3 GiB without).
   */
  pinBytes: number;
}

/** The choices a training run makes from its plan: recomputation, and how much of a streamed base to keep uploaded. */
export function planTrainingMemory(request: TrainingMemoryRequest): TrainingMemory {
  const { config, storedBytes, residency, batchSize, seqLen, lora, fullLogits, capacity, hostBytes } = request;
  const plan = (recompute: boolean, pinBytes: number) =>
    planMemory({ config, residency, storedBytes, pinBytes, training: { batchSize, seqLen, lora, recompute, fullLogits }, capacity, hostBytes });
  const recompute = residency === 'streamed' || request.recompute === true || (request.recompute === 'auto' && !plan(false, 0).fits);
  return { plan: plan(recompute, 0), residency, recompute, pinBytes: 0 };
}

export function planMemory(request: PlanRequest): MemoryPlan {
  const items = [...weightItems(request), ...trainingItems(request), ...generationItems(request)];
  const backendPeak = sum(items.filter((i) => i.where === 'backend'));
  const hostOnly = sum(items.filter((i) => i.where === 'host'));
  // The wasm heap and tensors of host-memory backends are the process's own memory too.
  const hostPeak = hostOnly + backendPeak + PROCESS_BASELINE_BYTES;
  const biggest = items.filter((i) => i.where === 'backend').reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const fits = backendPeak <= request.capacity.bytes && hostPeak <= request.hostBytes;
  return { items, backendPeak, hostPeak, capacity: request.capacity, hostCapacity: request.hostBytes, fits, biggest, knobs: knobsFor(biggest, request) };
}

/** One line for the log: the peaks against the capacities. */
export function planSummary(plan: MemoryPlan): string {
  const verdict = plan.fits ? 'fits' : 'does not fit';
  return `memory plan: backend peak ${formatSize(plan.backendPeak)} of ${formatSize(plan.capacity.bytes)} (${plan.capacity.backend}), host ${formatSize(plan.hostPeak)} of ${formatSize(plan.hostCapacity)}: ${verdict}; largest: ${plan.biggest.item} ${formatSize(plan.biggest.bytes)}`;
}

/** The error text of a plan that does not fit. */
export function planProblem(plan: MemoryPlan): string {
  const over =
    plan.backendPeak > plan.capacity.bytes
      ? `needs ${formatSize(plan.backendPeak)} of backend memory and ${plan.capacity.backend} holds ${formatSize(plan.capacity.bytes)}`
      : `needs ${formatSize(plan.hostPeak)} of host memory and this machine has ${formatSize(plan.hostCapacity)} to give`;
  return `${over}; the largest part is ${plan.biggest.item} (${formatSize(plan.biggest.bytes)}: ${plan.biggest.detail}); to fit: ${plan.knobs.join('; ')} (see slm-train plan)`;
}

function weightItems({ config, residency, storedBytes, pinBytes, capacity }: PlanRequest): PlanItem[] {
  const params = countParameters(config);
  if (residency === 'resident') {
    const items: PlanItem[] = [{ item: 'base weights', where: 'backend', bytes: params * F32, detail: `${params.toLocaleString('en')} parameters as float32 variables` }];
    if (storedBytes !== null) items.push({ item: 'weights being read', where: 'host', bytes: largestTensor(config) * F32, detail: 'one tensor decoded to float32 at a time' });
    return items;
  }
  const layer = layerMatrixValues(config);
  const head = headChunkValues(config);
  const matrices = parameterSpecs(config).filter((s) => s.hfShape.length > 1).reduce((n, s) => n + s.hfShape[0] * s.hfShape[1], 0);
  return [
    { item: 'base weights (compact)', where: 'host', bytes: storedBytes ?? params * 2, detail: 'matrices in their stored types, in host memory' },
    { item: 'base vectors', where: 'backend', bytes: (params - matrices) * F32, detail: 'norms and biases as float32' },
    ...(pinBytes > 0 ? [{ item: 'pinned uploads', where: 'backend' as const, bytes: Math.min(pinBytes, matrices * F32), detail: 'streamed weights kept between uses' }] : []),
    {
      item: 'streamed layer',
      where: 'backend',
      bytes: Math.max(layer.total, head) * F32,
      detail: `one layer's ${(layer.total / 1e6).toFixed(1)}M weights as float32 while it runs, in 32 MiB row blocks`,
    },
    {
      item: 'packed weights',
      where: 'backend',
      // At most: XNNPACK packs each right-hand matrix of a product and keeps the copy while the matrix lives
      // (a product that runs swapped packs its activations instead).
      bytes: Math.max(layer.total, head) * F32,
      detail: "the products' packed copy of the running layer's weights (inside the wasm module), at most",
    },
    // wasm: uploads are decoded straight into its heap (tensorFilledWith); elsewhere through a host array,
    // at most a fused group's float32 values.
    ...(capacity.backend === 'wasm' ? [] : [{ item: 'decoding on the host', where: 'host' as const, bytes: layer.largestGroup * F32, detail: 'weights decoded before upload' }]),
  ];
}

function trainingItems({ config, residency, training }: PlanRequest): PlanItem[] {
  if (!training) return [];
  const { batchSize: B, seqLen: T, lora, recompute, fullLogits } = training;
  const { hiddenSize: D, numLayers: L, vocabSize: V } = config;
  const N = B * T;
  const trainable = lora ? loraModules(config, lora).reduce((n, m) => n + lora.rank * (m.inFeatures + m.outFeatures), 0) : countParameters(config);
  const perLayer = layerActivationBytes(config, training);
  const items: PlanItem[] = [
    {
      item: lora ? 'LoRA adapters + AdamW' : 'gradients + AdamW',
      where: 'backend',
      // Adapter values (a resident model's weights are counted above), gradients, two moments.
      bytes: trainable * F32 * (lora ? 4 : 3),
      detail: `${trainable.toLocaleString('en')} trainable values: ${lora ? 'values, ' : ''}gradients, AdamW moments`,
    },
    recompute || residency === 'streamed'
      ? {
          item: 'activations (recomputed)',
          where: 'backend',
          // The rebuilt layer's activations and, until its backward pass ends, their gradients (tfjs frees a
          // backward pass's intermediate gradients only when it returns).
          bytes: L * N * D * F32 * 2 + 2 * perLayer,
          detail: `each layer's input and output [${B}x${T}x${D}] kept, one layer's ${formatSize(perLayer)} and its gradients rebuilt at a time`,
        }
      : { item: 'activations', where: 'backend', bytes: L * perLayer, detail: `${L} layers x ${formatSize(perLayer)} for ${B}x${T} tokens` },
    residency === 'streamed' && !fullLogits
      ? // One chunk's logits, probabilities and product at a time, and the target rows.
        { item: 'logits and loss', where: 'backend', bytes: (N * headChunkRows(config) * 3 + N * D * 2) * F32, detail: `[${N}x${headChunkRows(config)}] logits of one head chunk at a time` }
      : // Logits, their softmax (kept for the gradient), the gradient and one temporary of the same size.
        { item: 'logits and loss', where: 'backend', bytes: N * V * F32 * 4, detail: `[${N}x${V}] logits, probabilities, gradient and one temporary` },
  ];
  return items;
}

function generationItems({ config, generation }: PlanRequest): PlanItem[] {
  if (!generation) return [];
  const { numLayers: L, numKvHeads: KVH, headDim: hd, vocabSize: V } = config;
  const { batchSize: B, positions: S } = generation;
  return [
    { item: 'KV cache', where: 'backend', bytes: 2 * L * B * KVH * S * hd * F32 * 2, detail: `keys and values of ${B}x${S} positions, and the prompt's copy into the buffers decoding fills` },
    { item: 'logits', where: 'backend', bytes: B * S * V * F32 * 2, detail: `the prompt pass's [${B}x${S}x${V}] logits and log-probabilities` },
  ];
}

/**
 * Bytes one decoder layer keeps for its backward pass during training plus the backward pass's own
 * temporaries, per token and per attention score, as counted from the ops of layers.ts.
 */
export function layerActivationBytes(config: ModelConfig, { batchSize: B, seqLen: T, lora }: TrainingShape): number {
  const { hiddenSize: D, intermediateSize: F, numHeads: H, numKvHeads: KVH, headDim: hd } = config;
  const qkv = (H + 2 * KVH) * hd;
  const N = B * T;
  // Norm outputs and normalized inputs, residual sums (8 D); qkv, its rotated copy, the split heads and their
  // transposes (4 qkv); context and its transpose (2 H hd); gate|up, sigmoid, silu, up, product (6 F).
  const perToken = 8 * D + 4 * qkv + 2 * H * hd + 6 * F + (lora ? loraPerToken(config, lora) : 0);
  // Causal attention keeps the probabilities of the keys each block of 128 queries sees (about half of T^2
  // for long sequences) and builds the scores, the mask sum and the softmax of one block at a time.
  const blocks = Math.ceil(T / 128);
  const visible = (T * T * (blocks + 1)) / (2 * blocks);
  const scores = B * H * visible;
  return (N * perToken + 2 * scores) * F32;
}

/** LoRA's per-token values: each adapted input after dropout, the rank-r product, the update. */
function loraPerToken(config: ModelConfig, lora: LoraConfig): number {
  const modules = loraModules({ ...config, numLayers: 1 }, lora);
  return modules.reduce((n, m) => n + (lora.dropout > 0 ? m.inFeatures : 0) + lora.rank + m.outFeatures, 0);
}

function layerMatrixValues(config: ModelConfig): { total: number; largestGroup: number } {
  const { hiddenSize: d, intermediateSize: f, numHeads: H, numKvHeads: KVH, headDim: hd } = config;
  const layer0 = parameterSpecs({ ...config, numLayers: 1 }).filter((s) => s.name.startsWith('model.layers.0.') && s.hfShape.length > 1);
  const sizes = layer0.map((s) => s.hfShape[0] * s.hfShape[1]);
  return { total: sizes.reduce((a, b) => a + b, 0), largestGroup: Math.max(2 * f * d, (H + 2 * KVH) * hd * d) };
}

/** Vocabulary rows of one streamed head chunk (CausalLM's default). */
function headChunkRows(config: ModelConfig): number {
  return Math.min(config.vocabSize, Math.floor(UPLOAD_VALUES / config.hiddenSize));
}

function headChunkValues(config: ModelConfig): number {
  return headChunkRows(config) * config.hiddenSize;
}

function largestTensor(config: ModelConfig): number {
  return Math.max(...parameterSpecs(config).map((s) => s.hfShape.reduce((a, b) => a * b, 1)));
}

function knobsFor(biggest: PlanItem, { training, residency, capacity }: PlanRequest): string[] {
  const knobs: string[] = [];
  if (training) {
    if (biggest.item.startsWith('activations') || biggest.item === 'logits and loss') {
      knobs.push(`lower data.seq_len (${training.seqLen}) or train.batch_size (${training.batchSize}), with train.grad_accum to keep the tokens per step`);
      if (!training.recompute && residency === 'resident') knobs.push('train.recompute: true (one more forward pass per step, a layer of activations instead of all)');
    }
    if (biggest.item.startsWith('LoRA')) knobs.push(`a lower student.rank (${training.lora?.rank}) or fewer student.targets`);
  }
  if (residency === 'resident' && biggest.item === 'base weights') knobs.push('student.weights: streamed (the base stays compact in host memory)');
  if (capacity.backend === 'wasm') knobs.push('another backend without the 4 GiB wasm heap (--backend tensorflow or tensorflow-gpu)');
  return knobs;
}

function sum(items: PlanItem[]): number {
  return items.reduce((n, i) => n + i.bytes, 0);
}
