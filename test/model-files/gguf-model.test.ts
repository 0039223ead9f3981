import * as tf from '@tensorflow/tfjs-core';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { GgufFile } from '../../src/formats/gguf/reader.ts';
import { GgufWriter } from '../../src/formats/gguf/writer.ts';
import type { GgufWritableType } from '../../src/formats/gguf/writer.ts';
import type { GgufValue } from '../../src/formats/gguf/metadata.ts';
import { exportGguf, loadGgufModel } from '../../src/model-files/gguf-model.ts';
import { openHfWeights } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { loadModel, loadModelDir } from '../../src/model-files/load.ts';
import { bytesToUnicode } from '../../src/tokenizer/byte-level.ts';
import { FIXTURE_TOKENIZER } from '../fixtures/gguf/tokenizers.ts';

await initBackend('cpu');

const FIXTURES = join(import.meta.dirname, '../fixtures/hf');
const LLAMA_DIR = join(FIXTURES, 'tiny-llama');
const QWEN2_DIR = join(FIXTURES, 'tiny-qwen2');
const QWEN3_DIR = join(FIXTURES, 'tiny-qwen3');

interface Expected {
  input_ids: number[];
  logits: number[][];
}

const expectedOf = async (dir: string) => JSON.parse(await readFile(join(dir, 'expected.json'), 'utf8')) as Expected;
const hfConfigOf = async (dir: string) => JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, any>;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slm-gguf-model-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function logitsOf(model: CausalLM, ids: number[]): number[][] {
  return tf.tidy(() => (model.forward(tf.tensor2d(ids, [1, ids.length], 'int32')).arraySync() as number[][][])[0]);
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  let max = 0;
  a.forEach((row, i) => row.forEach((v, j) => (max = Math.max(max, Math.abs(v - b[i][j])))));
  return max;
}

describe.each([
  ['tiny-llama', LLAMA_DIR],
  ['tiny-qwen2', QWEN2_DIR],
  ['tiny-qwen3', QWEN3_DIR],
])('%s through exportGguf and loadGgufModel', (name, fixture) => {
  // Logits are of order 1. Measured: F16 1.1e-3 (tiny-qwen2's BF16 weights are nearly exact in F16), Q8_0 2.6e-2.
  const tolerance = { F32: 0, F16: 5e-3, Q8_0: 6e-2 };

  it.each(['F32', 'F16', 'Q8_0'] as const)('keeps the config, and the logits within the rounding of %s', async (type) => {
    const { model } = await loadModelDir(fixture);
    const path = join(dir, `${name}-${type}.gguf`);
    await exportGguf(model, FIXTURE_TOKENIZER, path, { type, name: 'tiny' });
    const loaded = await loadGgufModel(path);
    const ids = (await expectedOf(fixture)).input_ids;
    // GGUF carries one eos id (and end-of-turn ids, which these fixtures lack), not config.json's list.
    expect(loaded.config).toEqual({ ...model.config, stopTokenIds: model.config.stopTokenIds.slice(0, 1) });
    expect(maxAbsDiff(logitsOf(loaded.model, ids), logitsOf(model, ids))).toBeLessThanOrEqual(tolerance[type]);
    expect(loaded.chatTemplate).toBe(FIXTURE_TOKENIZER.config.chat_template);
    model.dispose();
    loaded.model.dispose();
  });
});

describe('tiny-qwen3 in GGUF', () => {
  it("is written as llama.cpp's qwen3: per-head q/k norm tensors in HF order, head_dim as key_length", async () => {
    const { model } = await loadModelDir(QWEN3_DIR);
    const path = join(dir, 'tiny-qwen3-layout.gguf');
    await exportGguf(model, FIXTURE_TOKENIZER, path, { type: 'F32' });
    const file = await GgufFile.open(path);
    try {
      expect(file.metadata.getString('general.architecture')).toBe('qwen3');
      expect(file.metadata.getNumber('qwen3.attention.key_length')).toBe(16);
      expect(file.tensorInfo('blk.1.attn_k_norm.weight').shape).toEqual([16]);
      const weights = await openHfWeights(QWEN3_DIR);
      for (const [hf, gguf] of [
        ['model.layers.1.self_attn.q_norm.weight', 'blk.1.attn_q_norm.weight'],
        ['model.layers.0.self_attn.k_proj.weight', 'blk.0.attn_k.weight'],
      ]) {
        expect(await file.readTensor(gguf)).toEqual((await weights.read(hf)).data);
      }
      await weights.close();
    } finally {
      await file.close();
    }
    // and the loaded file still computes PyTorch's logits
    const expected = await expectedOf(QWEN3_DIR);
    const loaded = await loadGgufModel(path);
    expect(maxAbsDiff(logitsOf(loaded.model, expected.input_ids), expected.logits)).toBeLessThan(1e-4);
    model.dispose();
    loaded.model.dispose();
  });

  it('refuses to write q/k norms with attention biases, which llama.cpp qwen3 lacks', async () => {
    const { model } = await loadModelDir(QWEN3_DIR);
    const biased = CausalLM.init({ ...model.config, attentionBias: true }, { seed: 1 });
    await expect(exportGguf(biased, FIXTURE_TOKENIZER, join(dir, 'biased-qwen3.gguf'), { type: 'F32' })).rejects.toThrow(
      /q\/k norms and attention biases cannot be written to GGUF/,
    );
    model.dispose();
    biased.dispose();
  });
});

// ---- a GGUF this project did not write ------------------------------------------------------------------

/** numpy's `w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)`, written out. */
function converterPermute(w: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  const half = rows / nHead / 2;
  const out = new Float32Array(w.length);
  let outRow = 0;
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < half; i++) {
      for (let two = 0; two < 2; two++) {
        const inRow = (h * 2 + two) * half + i;
        out.set(w.subarray(inRow * cols, (inRow + 1) * cols), outRow++ * cols);
      }
    }
  }
  return out;
}

/** convert_hf_to_gguf.py's Llama 3 rope factors, in float32 steps as its torch code computes them. */
function converterRopeFactors(cfg: Record<string, any>, headDim: number): Float32Array {
  const s = cfg.rope_scaling;
  const f = Math.fround;
  const factors = [];
  for (let i = 0; i < headDim; i += 2) {
    const freq = f(1 / f(cfg.rope_theta ** f(i / headDim)));
    const wavelen = (2 * Math.PI) / freq;
    const old = s.original_max_position_embeddings;
    if (wavelen < old / s.high_freq_factor) factors.push(1);
    else if (wavelen > old / s.low_freq_factor) factors.push(s.factor);
    else {
      const smooth = (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      factors.push(1 / ((1 - smooth) / s.factor + smooth));
    }
  }
  return Float32Array.from(factors);
}

const HF_TO_GGUF: [RegExp, string][] = [
  [/^model\.embed_tokens\.weight$/, 'token_embd.weight'],
  [/^model\.norm\.weight$/, 'output_norm.weight'],
  [/^lm_head\.weight$/, 'output.weight'],
  [/^model\.layers\.(\d+)\.input_layernorm\.weight$/, 'blk.$1.attn_norm.weight'],
  [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, 'blk.$1.ffn_norm.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)$/, 'blk.$1.attn_$2.$3'],
  [/^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$/, 'blk.$1.attn_output.weight'],
  [/^model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.weight$/, 'blk.$1.ffn_$2.weight'],
];

const ggufNameOf = (hf: string) => {
  const [pattern, replacement] = HF_TO_GGUF.find(([p]) => p.test(hf))!;
  return hf.replace(pattern, replacement);
};

interface Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
  type?: GgufWritableType;
}

interface FileSpec {
  metadata: Record<string, GgufValue>;
  tensors: Tensor[];
}

const u32 = (value: number): GgufValue => ({ type: 'UINT32', value });
const f32 = (value: number): GgufValue => ({ type: 'FLOAT32', value });
const str = (value: string): GgufValue => ({ type: 'STRING', value });

/** tokenizer.ggml.* for the 64 ids of the fixtures, written by hand (no exporter code involved). */
function fixtureVocabMetadata(): Record<string, GgufValue> {
  const specials = ['<unk>', '<s>', '</s>', '<|eot|>'];
  const tokens = [...specials, ...bytesToUnicode().slice(0x21, 0x21 + 60)];
  return {
    'tokenizer.ggml.model': str('gpt2'),
    'tokenizer.ggml.pre': str('default'),
    'tokenizer.ggml.tokens': { type: 'ARRAY', itemType: 'STRING', value: tokens },
    'tokenizer.ggml.token_type': { type: 'ARRAY', itemType: 'INT32', value: tokens.map((_, id) => (id < 4 ? 3 : 1)) },
    'tokenizer.ggml.merges': { type: 'ARRAY', itemType: 'STRING', value: [] },
    'tokenizer.ggml.bos_token_id': u32(1),
    'tokenizer.ggml.eos_token_id': u32(2),
  };
}

/**
 * A GGUF laid out as convert_hf_to_gguf.py writes a Llama (LlamaModel) or Qwen2 (Qwen2Model) checkpoint:
 * rope factors first, then the tensors in checkpoint order, q/k permuted for llama only. One deviation: the
 * converter reads original_max_position_embeddings from the top level of config.json (8192 when absent),
 * not from rope_scaling; the factors here use rope_scaling's, as transformers (and expected.json) do.
 */
async function converterLayout(fixture: string): Promise<FileSpec> {
  const cfg = await hfConfigOf(fixture);
  const arch = cfg.model_type === 'qwen2' ? 'qwen2' : 'llama';
  const headDim = cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads;
  const metadata: Record<string, GgufValue> = {
    'general.architecture': str(arch),
    'general.name': str('Tiny'),
    [`${arch}.block_count`]: u32(cfg.num_hidden_layers),
    [`${arch}.context_length`]: u32(cfg.max_position_embeddings),
    [`${arch}.embedding_length`]: u32(cfg.hidden_size),
    [`${arch}.feed_forward_length`]: u32(cfg.intermediate_size),
    [`${arch}.attention.head_count`]: u32(cfg.num_attention_heads),
    [`${arch}.attention.head_count_kv`]: u32(cfg.num_key_value_heads),
    [`${arch}.rope.freq_base`]: f32(cfg.rope_theta),
    [`${arch}.attention.layer_norm_rms_epsilon`]: f32(cfg.rms_norm_eps),
    ...(cfg.head_dim ? { [`${arch}.attention.key_length`]: u32(headDim), [`${arch}.attention.value_length`]: u32(headDim) } : {}),
    'general.file_type': u32(0),
    ...(arch === 'llama' ? { 'llama.vocab_size': u32(cfg.vocab_size), 'llama.rope.dimension_count': u32(headDim) } : {}),
    'general.quantization_version': u32(2),
    ...fixtureVocabMetadata(),
  };
  const tensors: Tensor[] = [];
  if (cfg.rope_scaling) {
    const factors = converterRopeFactors(cfg, headDim);
    tensors.push({ name: 'rope_freqs.weight', shape: [factors.length], data: factors });
  }
  const weights = await openHfWeights(fixture);
  for (const name of weights.names()) {
    const { shape, data } = await weights.read(name);
    const heads = /q_proj/.test(name) ? cfg.num_attention_heads : /k_proj/.test(name) ? cfg.num_key_value_heads : 0;
    const permuted = arch === 'llama' && heads ? converterPermute(data, shape[0], shape[1] ?? 1, heads) : data;
    tensors.push({ name: ggufNameOf(name), shape, data: permuted });
  }
  await weights.close();
  return { metadata, tensors };
}

async function writeGguf(path: string, spec: FileSpec): Promise<string> {
  const writer = new GgufWriter(path);
  for (const [key, value] of Object.entries(spec.metadata)) writer.add(key, value);
  for (const t of spec.tensors) writer.addTensorInfo(t.name, t.shape, t.type ?? 'F32');
  await writer.write(spec.tensors);
  return path;
}

describe("a GGUF laid out as llama.cpp's converter writes it", () => {
  it.each([
    ['tiny-llama', LLAMA_DIR],
    ['tiny-qwen2', QWEN2_DIR],
  ])('%s matches the PyTorch reference logits', async (name, fixture) => {
    const path = await writeGguf(join(dir, `converter-${name}.gguf`), await converterLayout(fixture));
    const expected = await expectedOf(fixture);
    const { model, config } = await loadGgufModel(path);
    expect(maxAbsDiff(logitsOf(model, expected.input_ids), expected.logits)).toBeLessThan(1e-4);
    const hf = await hfConfigOf(fixture);
    expect((config.ropeScaling?.ropeType === 'llama3' && config.ropeScaling.originalMaxPositionEmbeddings) || null).toBe(hf.rope_scaling?.original_max_position_embeddings ?? null);
    expect(config.tieWordEmbeddings).toBe(hf.tie_word_embeddings);
    model.dispose();
  });

  it('also reads quantized weights (Q8_0), within the quantization error', async () => {
    const spec = await converterLayout(LLAMA_DIR);
    for (const t of spec.tensors) if (t.shape.length === 2 && t.shape[1] % 32 === 0) t.type = 'Q8_0';
    const path = await writeGguf(join(dir, 'converter-q8.gguf'), spec);
    const expected = await expectedOf(LLAMA_DIR);
    const { model } = await loadGgufModel(path);
    expect(maxAbsDiff(logitsOf(model, expected.input_ids), expected.logits)).toBeLessThan(6e-2);
    model.dispose();
  });
});

describe('phi3 files', () => {
  /** The tiny-llama weights fused as Phi3MiniModel writes them: attn_qkv rows q, k, v; ffn_up rows gate, up. */
  async function phi3Layout(): Promise<FileSpec> {
    const { metadata, tensors } = await converterLayout(LLAMA_DIR);
    const weights = await openHfWeights(LLAMA_DIR);
    const rows = async (...names: string[]) => {
      const parts = await Promise.all(names.map(async (name) => [...(await weights.read(name)).data]));
      return Float32Array.from(parts.flat());
    };
    const fused: Tensor[] = [];
    for (const layer of [0, 1]) {
      const p = `model.layers.${layer}`;
      const qkv = await rows(`${p}.self_attn.q_proj.weight`, `${p}.self_attn.k_proj.weight`, `${p}.self_attn.v_proj.weight`);
      const gateUp = await rows(`${p}.mlp.gate_proj.weight`, `${p}.mlp.up_proj.weight`);
      fused.push({ name: `blk.${layer}.attn_qkv.weight`, shape: [64, 32], data: qkv });
      fused.push({ name: `blk.${layer}.ffn_up.weight`, shape: [96, 32], data: gateUp });
    }
    await weights.close();
    const kept = tensors.filter((t) => !/attn_[qkv]\.weight|ffn_(gate|up)\.weight|rope_freqs/.test(t.name));
    const phi3 = Object.fromEntries(Object.entries(metadata).map(([key, value]) => [key.replace(/^llama\./, 'phi3.'), value]));
    phi3['general.architecture'] = str('phi3');
    phi3['phi3.attention.sliding_window'] = u32(0);
    return { metadata: phi3, tensors: [...kept, ...fused] };
  }

  it('splits the fused tensors into the same model as the separate ones', async () => {
    const path = await writeGguf(join(dir, 'phi3.gguf'), await phi3Layout());
    const { model, config } = await loadGgufModel(path);
    expect(config.modelType).toBe('llama');
    expect(config.ropeScaling).toBeNull();
    // phi3 has no Llama 3 rope scaling: the same weights without it
    const { model: reference } = await loadModelDir(LLAMA_DIR);
    const weights = new Map(reference.hfTensors().map((t) => [t.name, t]));
    const unscaled = await CausalLM.fromHfTensors({ ...reference.config, ropeScaling: null }, async (name) => weights.get(name));
    const ids = (await expectedOf(LLAMA_DIR)).input_ids;
    expect(maxAbsDiff(logitsOf(model, ids), logitsOf(unscaled, ids))).toBe(0);
    [model, reference, unscaled].forEach((m) => m.dispose());
  });

  it('refuses long-rope factors and sliding windows shorter than the context', async () => {
    const longRope = await phi3Layout();
    longRope.tensors.push({ name: 'rope_factors_long.weight', shape: [4], data: new Float32Array(4).fill(2) });
    await expect(loadGgufModel(await writeGguf(join(dir, 'phi3-long.gguf'), longRope))).rejects.toThrow(/long-rope scaling .* is not supported/);
    const windowed = await phi3Layout();
    windowed.metadata['phi3.attention.sliding_window'] = u32(64);
    await expect(loadGgufModel(await writeGguf(join(dir, 'phi3-swa.gguf'), windowed))).rejects.toThrow(
      /phi3\.attention\.sliding_window is 64, shorter than the 128-token context: sliding-window attention is not supported/,
    );
  });
});

describe('loadModel', () => {
  it('loads a model directory, a .gguf file and an ollama: reference to the same logits', async () => {
    const expected = await expectedOf(LLAMA_DIR);
    const gguf = await writeGguf(join(dir, 'ref.gguf'), await converterLayout(LLAMA_DIR));
    const store = join(dir, 'ollama');
    const digest = 'ab'.repeat(32);
    await mkdir(join(store, 'blobs'), { recursive: true });
    await copyFile(gguf, join(store, 'blobs', `sha256-${digest}`));
    await mkdir(join(store, 'manifests/registry.ollama.ai/library/tiny'), { recursive: true });
    const manifest = { schemaVersion: 2, layers: [{ mediaType: 'application/vnd.ollama.image.model', digest: `sha256:${digest}`, size: 1 }] };
    await writeFile(join(store, 'manifests/registry.ollama.ai/library/tiny/latest'), JSON.stringify(manifest));

    const messages: string[] = [];
    for (const ref of [LLAMA_DIR, gguf, 'ollama:tiny']) {
      const loaded = await loadModel(ref, { ollamaModelsDir: store, logger: { info: (m) => messages.push(m) } });
      expect(maxAbsDiff(logitsOf(loaded.model, expected.input_ids), expected.logits)).toBeLessThan(1e-4);
      loaded.model.dispose();
    }
    // 19,616 float32 parameters, announced before loading each of the three
    expect(messages).toHaveLength(3);
    expect(messages[1]).toMatch(/llama, 2 layers, 19,616 parameters: 76\.6 KiB as float32/);
  });

  it('refuses an Ollama model that runs LoRA adapters on top of its GGUF', async () => {
    const store = join(dir, 'ollama-adapter');
    const [model, adapter] = ['cd'.repeat(32), 'ef'.repeat(32)];
    await mkdir(join(store, 'blobs'), { recursive: true });
    await copyFile(await writeGguf(join(dir, 'base.gguf'), await converterLayout(LLAMA_DIR)), join(store, 'blobs', `sha256-${model}`));
    await writeFile(join(store, 'blobs', `sha256-${adapter}`), 'GGUF');
    await mkdir(join(store, 'manifests/registry.ollama.ai/library/tuned'), { recursive: true });
    const layers = [
      { mediaType: 'application/vnd.ollama.image.model', digest: `sha256:${model}` },
      { mediaType: 'application/vnd.ollama.image.adapter', digest: `sha256:${adapter}` },
    ];
    await writeFile(join(store, 'manifests/registry.ollama.ai/library/tuned/latest'), JSON.stringify({ layers }));
    await expect(loadModel('ollama:tuned', { ollamaModelsDir: store })).rejects.toThrow(
      /tuned:latest applies 1 LoRA adapter\(s\) on top of its GGUF/,
    );
  });

  it('says what it accepts when the reference is neither', async () => {
    await expect(loadModel(join(dir, 'nothing-here'))).rejects.toThrow(
      /not found \(expected a Hugging Face model directory or id, a \.gguf file or ollama:NAME\[:TAG\]\)/,
    );
  });
});

describe('clear errors', () => {
  const load = async (name: string, edit: (spec: FileSpec) => void) => {
    const spec = await converterLayout(LLAMA_DIR);
    edit(spec);
    return loadGgufModel(await writeGguf(join(dir, name), spec));
  };

  it('names an unsupported architecture and what would be needed', async () => {
    const path = join(dir, 'gemma3n.gguf');
    await expect(load('gemma3n.gguf', (s) => (s.metadata['general.architecture'] = str('gemma3n')))).rejects.toThrow(
      `${path}: architecture 'gemma3n' is not supported yet (supported: llama, qwen2, phi3, qwen3, gemma, gemma2, gemma3); Gemma 3n has per-layer embeddings`,
    );
    await expect(load('qwen3moe.gguf', (s) => (s.metadata['general.architecture'] = str('qwen3moe')))).rejects.toThrow(
      /'qwen3moe' .*supported: llama, qwen2, phi3, qwen3, gemma, gemma2, gemma3\); Qwen3 MoE needs per-head q\/k norms and mixture-of-experts/,
    );
  });

  it('names a missing tensor and its expected shape', async () => {
    await expect(load('missing.gguf', (s) => (s.tensors = s.tensors.filter((t) => t.name !== 'blk.1.ffn_down.weight')))).rejects.toThrow(
      /tensor 'blk\.1\.ffn_down\.weight' \(shape \[32,48\]\) is missing/,
    );
  });

  it('names a tensor with the wrong shape', async () => {
    await expect(
      load('shape.gguf', (s) => {
        const k = s.tensors.find((t) => t.name === 'blk.0.attn_k.weight')!;
        Object.assign(k, { shape: [8, 32], data: k.data.subarray(0, 256) });
      }),
    ).rejects.toThrow(/tensor 'blk\.0\.attn_k\.weight' has shape \[8,32\], but the metadata implies \[16,32\]/);
  });

  it('refuses tensors the model has no place for, and rope factors it cannot run', async () => {
    await expect(
      load('extra.gguf', (s) => s.tensors.push({ name: 'blk.0.attn_output.bias', shape: [32], data: new Float32Array(32) })),
    ).rejects.toThrow(/tensors this model has no place for: 'blk\.0\.attn_output\.bias'/);
    await expect(
      load('rope.gguf', (s) => (s.tensors.find((t) => t.name === 'rope_freqs.weight')!.data = Float32Array.of(3, 1, 2, 5))),
    ).rejects.toThrow(/rope_freqs\.weight cannot be run: the factors do not grow with the wavelength/);
  });

  it('refuses mixture-of-experts files and unsupported rope scaling types', async () => {
    await expect(load('moe.gguf', (s) => (s.metadata['llama.expert_count'] = u32(8)))).rejects.toThrow(
      /llama\.expert_count is 8: mixture-of-experts/,
    );
    await expect(load('yarn.gguf', (s) => (s.metadata['llama.rope.scaling.type'] = str('yarn')))).rejects.toThrow(
      /llama\.rope\.scaling\.type 'yarn' is not supported/,
    );
  });
});
