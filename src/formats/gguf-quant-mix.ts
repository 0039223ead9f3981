/**
 * The storage type of each tensor of a GGUF export, for the file types llama-quantize users ask for. The
 * K-quant mixes follow llama.cpp's choices (src/llama-quant.cpp `llama_tensor_get_type_impl` and
 * `tensor_type_fallback`, without an importance matrix, for dense models):
 *   Q4_K_M  Q4_K, with Q6_K for attn_v and ffn_down in the layers `useMoreBits` picks
 *   Q5_K_M  Q5_K, the same Q6_K layers
 *   Q6_K    Q6_K everywhere
 * and in all three the output head (the token embedding when the head is tied to it) Q6_K, or Q8_0 when its
 * rows are not whole super-blocks. A row that is not whole blocks of the chosen type falls back as llama.cpp
 * falls back: Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0, and to F16 when not even 32 divides it. The others
 * quantize every matrix alike (llama-quantize --pure), F16 when rows are not whole blocks of 32. Vectors stay F32.
 */
import { GGML_BLOCK_LAYOUT } from './gguf/constants.ts';
import type { GgufWritableType } from './gguf/writer.ts';

/** The file types of a GGUF export, as the CLI and recipes name them (lowercase) and llama.cpp's llama_ftype numbers them. */
export const GGUF_EXPORT_TYPES = {
  F32: { name: 'f32', fileType: 0 },
  F16: { name: 'f16', fileType: 1 },
  Q8_0: { name: 'q8_0', fileType: 7 },
  Q4_0: { name: 'q4_0', fileType: 2 },
  Q6_K: { name: 'q6_k', fileType: 18 },
  Q5_K_M: { name: 'q5_k_m', fileType: 17 },
  Q4_K_M: { name: 'q4_k_m', fileType: 15 },
} as const;

export type GgufExportType = keyof typeof GGUF_EXPORT_TYPES;

/** The export type a lowercase name (`q4_k_m`) stands for, or undefined. */
export function ggufExportType(name: string): GgufExportType | undefined {
  return (Object.keys(GGUF_EXPORT_TYPES) as GgufExportType[]).find((type) => GGUF_EXPORT_TYPES[type].name === name.toLowerCase());
}

const MIX_BASE: Partial<Record<GgufExportType, GgufWritableType>> = { Q4_K_M: 'Q4_K', Q5_K_M: 'Q5_K', Q6_K: 'Q6_K' };
const FALLBACK: Partial<Record<GgufWritableType, GgufWritableType>> = { Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0' };

/** llama.cpp's use_more_bits: the first and last eighth of the layers, and every third between. */
function useMoreBits(layer: number, layers: number): boolean {
  const eighth = Math.floor(layers / 8);
  return layer < eighth || layer >= Math.floor((7 * layers) / 8) || (layer - eighth) % 3 === 2;
}

/**
 * Storage types for `tensors` (GGUF names and row-major shapes, in file order) of a model with `layers`
 * blocks whose head is `output.weight`, or `token_embd.weight` when the file has no output tensor.
 */
export function storageTypes(type: GgufExportType, tensors: readonly { name: string; shape: readonly number[] }[], layers: number): Map<string, GgufWritableType> {
  const tied = !tensors.some((t) => t.name === 'output.weight');
  const types = new Map<string, GgufWritableType>();
  for (const { name, shape } of tensors) {
    const columns = shape[shape.length - 1];
    if (shape.length < 2) types.set(name, 'F32');
    else if (MIX_BASE[type]) types.set(name, fallback(mixType(type, name, columns, tied, layers), columns));
    else types.set(name, type !== 'F32' && type !== 'F16' && columns % 32 !== 0 ? 'F16' : (type as GgufWritableType));
  }
  return types;
}

function mixType(type: GgufExportType, name: string, columns: number, tied: boolean, layers: number): GgufWritableType {
  const base = MIX_BASE[type]!;
  if (name === 'output.weight' || (tied && name === 'token_embd.weight')) return columns % GGML_BLOCK_LAYOUT[base].blockSize !== 0 ? 'Q8_0' : 'Q6_K';
  const layer = Number(/^blk\.(\d+)\./.exec(name)?.[1]);
  const moreBits = type !== 'Q6_K' && /\.(attn_v|ffn_down)\.weight$/.test(name) && useMoreBits(layer, layers);
  return moreBits ? 'Q6_K' : base;
}

/** tensor_type_fallback: a type whose blocks do not divide the rows gives way to a 32-value one, then to F16. */
function fallback(type: GgufWritableType, columns: number): GgufWritableType {
  if (columns % GGML_BLOCK_LAYOUT[type].blockSize === 0) return type;
  const next = FALLBACK[type] ?? type;
  return columns % GGML_BLOCK_LAYOUT[next].blockSize === 0 ? next : 'F16';
}
