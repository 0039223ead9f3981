import * as tf from '@tensorflow/tfjs-core';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bf16BitsToFloat32, f16BitsToFloat32, float32ToBf16Bits, float32ToF16Bits } from '../../src/formats/half-float.ts';
import { HfModelDirError, openHfWeights, readHfConfig, writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { SafetensorsFile, writeSafetensors } from '../../src/formats/safetensors.ts';
import type { HostTensor } from '../../src/formats/safetensors.ts';
import { initBackend } from '../../src/backend/index.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { loadModelDir } from '../../src/model-files/load.ts';
import { Rng } from '../../src/util/rng.ts';

const config = resolveModelConfig({
  modelType: 'qwen2',
  vocabSize: 40,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  attentionBias: true,
  tieWordEmbeddings: true,
  eosTokenId: 3,
});

/** HF-named tensors for `config` (the names only matter to the model; here they are just keys). */
function modelTensors(seed: number): HostTensor[] {
  const rng = new Rng(seed);
  const tensor = (name: string, shape: number[]): HostTensor => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = rng.normal() * 0.1;
    return { name, shape, data };
  };
  const { hiddenSize: d, intermediateSize: f, vocabSize: v, headDim: hd } = config;
  const out = [tensor('model.embed_tokens.weight', [v, d])];
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}.`;
    out.push(
      tensor(`${p}self_attn.q_proj.weight`, [config.numHeads * hd, d]),
      tensor(`${p}self_attn.q_proj.bias`, [config.numHeads * hd]),
      tensor(`${p}self_attn.k_proj.weight`, [config.numKvHeads * hd, d]),
      tensor(`${p}mlp.down_proj.weight`, [d, f]),
    );
  }
  out.push(tensor('model.norm.weight', [d]));
  return out;
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'slm-hf-dir-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function readAllWeights(dir: string): Promise<HostTensor[]> {
  const weights = await openHfWeights(dir);
  try {
    const out: HostTensor[] = [];
    for (const name of weights.names()) out.push(await weights.read(name));
    return out;
  } finally {
    await weights.close();
  }
}

async function* slowly(tensors: HostTensor[]): AsyncGenerator<HostTensor> {
  for (const tensor of tensors) {
    await new Promise((r) => setImmediate(r));
    yield tensor;
  }
}

describe('writeHfModelDir + readHfConfig + openHfWeights', () => {
  it('round-trips config, F32 weights and tokenizer files in a single file', async () => {
    const dir = join(root, 'single', 'model');
    const tensors = modelTensors(1);
    const tokenizerJson = '{"version":"1.0","model":{"type":"BPE"}}';
    await writeHfModelDir(dir, { config, tensors, dtype: 'F32', tokenizerJson, tokenizerConfig: { eos_token: '<|im_end|>' } });

    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect((await readHfConfig(dir)).config).toEqual(config);
    expect(await readFile(join(dir, 'tokenizer.json'), 'utf8')).toBe(tokenizerJson);
    expect(JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8'))).toEqual({ eos_token: '<|im_end|>' });
    expect(await readAllWeights(dir)).toEqual(tensors);
    const file = await SafetensorsFile.open(join(dir, 'model.safetensors'));
    expect(file.metadata).toEqual({ format: 'pt' });
    await file.close();
    expect(await readdir(dirname(dir))).toEqual(['model']);
  });

  it('shards by size with transformers names and an index, from an async iterable', async () => {
    const dir = join(root, 'sharded');
    const tensors = modelTensors(2);
    const maxShardBytes = 3000;
    await writeHfModelDir(dir, { config, tensors: slowly(tensors), dtype: 'F32', maxShardBytes });

    const files = (await readdir(dir)).filter((f) => f.endsWith('.safetensors')).sort();
    const count = files.length;
    expect(count).toBeGreaterThan(2);
    expect(files).toEqual(files.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.safetensors`));
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
    const totalBytes = tensors.reduce((n, t) => n + t.data.byteLength, 0);
    expect(index.metadata).toEqual({ total_size: totalBytes });
    expect(Object.keys(index.weight_map)).toEqual(tensors.map((t) => t.name));

    for (const shard of files) {
      const file = await SafetensorsFile.open(join(dir, shard));
      const bytes = file.names().reduce((n, name) => n + file.info(name).byteLength, 0);
      // a shard goes over the limit only when it holds one tensor that is bigger on its own
      expect(bytes <= maxShardBytes || file.names().length === 1).toBe(true);
      for (const name of file.names()) expect(index.weight_map[name]).toBe(shard);
      await file.close();
    }
    expect(await readAllWeights(dir)).toEqual(tensors);
  });

  it.each([
    ['BF16', float32ToBf16Bits, bf16BitsToFloat32, 'bfloat16'],
    ['F16', float32ToF16Bits, f16BitsToFloat32, 'float16'],
  ] as const)('stores %s weights and says so in config.json', async (dtype, encode, decode, torchDtype) => {
    const dir = join(root, `dtype-${dtype}`);
    const tensors = modelTensors(3);
    await writeHfModelDir(dir, { config, tensors, dtype, maxShardBytes: 2000 });
    const { raw } = await readHfConfig(dir);
    expect(raw.torch_dtype).toBe(torchDtype);
    const back = await readAllWeights(dir);
    expect(back.map((t) => t.name)).toEqual(tensors.map((t) => t.name));
    for (const [i, t] of tensors.entries()) {
      expect(back[i].shape).toEqual(t.shape);
      expect(back[i].data).toEqual(Float32Array.from(t.data, (x) => decode(encode(x))));
    }
  });

  it('replaces an existing directory completely and leaves nothing beside it', async () => {
    const parent = join(root, 'replace');
    const dir = join(parent, 'model');
    await writeHfModelDir(dir, { config, tensors: modelTensors(4), dtype: 'F32', maxShardBytes: 2000, tokenizerJson: '{}' });
    const tensors = modelTensors(5);
    await writeHfModelDir(dir, { config, tensors, dtype: 'F32' });
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);
    expect(await readAllWeights(dir)).toEqual(tensors);
    expect(await readdir(parent)).toEqual(['model']);
  });

  it('leaves the old directory untouched when writing fails midway', async () => {
    const parent = join(root, 'fail');
    const dir = join(parent, 'model');
    const tensors = modelTensors(6);
    await writeHfModelDir(dir, { config, tensors, dtype: 'F32' });
    async function* failing(): AsyncGenerator<HostTensor> {
      yield* slowly(modelTensors(7).slice(0, 3));
      throw new Error('teacher went away');
    }
    await expect(writeHfModelDir(dir, { config, tensors: failing(), dtype: 'F32', maxShardBytes: 1000 })).rejects.toThrow('teacher went away');
    await expect(writeHfModelDir(dir, { config, tensors: [tensors[0], tensors[0]], dtype: 'F32' })).rejects.toThrow(/is given twice/);
    expect(await readAllWeights(dir)).toEqual(tensors);
    expect(await readdir(parent)).toEqual(['model']);
  });

  it('refuses to replace a file, and an unexportable config before writing anything', async () => {
    const path = join(root, 'a-file');
    await writeFile(path, 'x');
    await expect(writeHfModelDir(path, { config, tensors: [], dtype: 'F32' })).rejects.toMatchObject({ code: 'NOT_A_DIRECTORY' });
    const dir = join(root, 'never');
    await expect(writeHfModelDir(dir, { config: { ...config, modelType: 'gpt_neox' }, tensors: [], dtype: 'F32' })).rejects.toThrow(
      /model_type 'gpt_neox' cannot be exported/,
    );
    await expect(readdir(dir)).rejects.toThrow();
  });
});

describe('reading a broken model directory', () => {
  async function freshDir(name: string): Promise<string> {
    const dir = join(root, 'broken', name);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  async function failure(promise: Promise<unknown>): Promise<HfModelDirError> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(HfModelDirError);
    return error as HfModelDirError;
  }

  it('names a missing config.json', async () => {
    const dir = await freshDir('no-config');
    const error = await failure(readHfConfig(dir));
    expect(error.code).toBe('MISSING_FILE');
    expect(error.message).toBe(`${join(dir, 'config.json')}: file not found`);
  });

  it('refuses an unsupported model_type', async () => {
    const dir = await freshDir('gemma');
    await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt_neox', hidden_size: 8 }));
    const error = await failure(readHfConfig(dir));
    expect(error.message).toContain("model_type 'gpt_neox' is not supported yet; supported: llama, mistral, qwen2");
  });

  it('names invalid JSON', async () => {
    const dir = await freshDir('bad-json');
    await writeFile(join(dir, 'config.json'), '{"model_type": ');
    expect((await failure(readHfConfig(dir))).code).toBe('INVALID_JSON');
  });

  it('names missing weights', async () => {
    const dir = await freshDir('no-weights');
    const error = await failure(openHfWeights(dir));
    expect(error.code).toBe('MISSING_WEIGHTS');
    expect(error.message).toContain('neither model.safetensors nor model.safetensors.index.json');
  });

  it('checks the index against the shards', async () => {
    const dir = await freshDir('index');
    const [a, b] = modelTensors(8);
    await writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [a], { dtype: 'F32' });
    const writeIndex = (weightMap: Record<string, string>) =>
      writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));

    await writeIndex({ [a.name]: 'model-00001-of-00002.safetensors', [b.name]: 'model-00002-of-00002.safetensors' });
    let error = await failure(openHfWeights(dir));
    expect(error.code).toBe('MISSING_SHARD');
    expect(error.message).toContain("lists shard 'model-00002-of-00002.safetensors'");

    await writeIndex({ [a.name]: 'model-00001-of-00002.safetensors', [b.name]: 'model-00001-of-00002.safetensors' });
    error = await failure(openHfWeights(dir));
    expect(error.code).toBe('MISSING_TENSOR');
    expect(error.message).toContain(`lists tensor '${b.name}' in 'model-00001-of-00002.safetensors', which does not contain it`);

    await writeIndex({ [a.name]: '../elsewhere.safetensors' });
    expect((await failure(openHfWeights(dir))).code).toBe('INVALID_INDEX');

    await writeIndex({ [a.name]: 'model-00001-of-00002.safetensors' });
    const weights = await openHfWeights(dir);
    expect(weights.names()).toEqual([a.name]);
    expect(weights.info(a.name)).toEqual({ dtype: 'F32', shape: a.shape, byteLength: a.data.byteLength });
    await expect(weights.read(b.name)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await weights.close();
  });
});

describe('a Phi-3 directory (fused qkv_proj and gate_up_proj)', () => {
  const llama = resolveModelConfig({ vocabSize: 40, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, eosTokenId: 3 });
  const phi3Json = {
    architectures: ['Phi3ForCausalLM'],
    model_type: 'phi3',
    vocab_size: 40,
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    hidden_act: 'silu',
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    max_position_embeddings: 2048,
    sliding_window: 2048,
    tie_word_embeddings: false,
    eos_token_id: 3,
  };

  /** Rows of `parts` one after another, as Phi-3 stores its fused projections. */
  const concatRows = (name: string, parts: HostTensor[]): HostTensor => {
    const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
    parts.reduce((offset, p) => (data.set(p.data, offset), offset + p.data.length), 0);
    return { name, shape: [parts.reduce((n, p) => n + p.shape[0], 0), parts[0].shape[1]], data };
  };

  /** The llama's tensors with each layer's q/k/v and gate/up fused as Phi-3 names them. */
  function fuse(tensors: HostTensor[]): HostTensor[] {
    const byName = new Map(tensors.map((t) => [t.name, t]));
    const fused = tensors.filter((t) => !/(q|k|v|gate|up)_proj\.weight$/.test(t.name));
    for (let i = 0; i < llama.numLayers; i++) {
      const p = `model.layers.${i}.`;
      const of = (names: string[]) => names.map((n) => byName.get(`${p}${n}.weight`)!);
      fused.push(concatRows(`${p}self_attn.qkv_proj.weight`, of(['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'])));
      fused.push(concatRows(`${p}mlp.gate_up_proj.weight`, of(['mlp.gate_proj', 'mlp.up_proj'])));
    }
    return fused;
  }

  async function writePhi3Dir(dir: string, tensors: HostTensor[], json: Record<string, unknown> = phi3Json): Promise<void> {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify(json));
    await writeSafetensors(join(dir, 'model.safetensors'), tensors, { dtype: 'F32', metadata: { format: 'pt' } });
  }

  it('computes the logits of the same weights saved unfused as llama', async () => {
    await initBackend('cpu');
    const model = CausalLM.init(llama, { seed: 7, std: 0.2 });
    const tensors = model.hfTensors();
    const [llamaDir, phi3Dir] = [join(root, 'unfused-llama'), join(root, 'fused-phi3')];
    await writeHfModelDir(llamaDir, { config: llama, tensors, dtype: 'F32' });
    await writePhi3Dir(phi3Dir, fuse(tensors));

    const weights = await openHfWeights(phi3Dir);
    expect(weights.names().sort()).toEqual(tensors.map((t) => t.name).sort());
    expect(weights.info('model.layers.1.self_attn.k_proj.weight')).toMatchObject({ shape: [8, 16], byteLength: 8 * 16 * 4 });
    for (const name of ['model.layers.1.self_attn.v_proj.weight', 'model.layers.0.mlp.up_proj.weight']) {
      expect(await weights.read(name)).toEqual(tensors.find((t) => t.name === name));
    }
    await weights.close();

    const ids = tf.tensor2d([[3, 17, 0, 39, 8, 21, 5]], [1, 7], 'int32');
    const [fromLlama, fromPhi3] = [(await loadModelDir(llamaDir)).model, (await loadModelDir(phi3Dir)).model];
    expect(fromPhi3.config).toEqual(llama);
    expect(fromPhi3.forward(ids).arraySync()).toEqual(fromLlama.forward(ids).arraySync());
    [model, fromLlama, fromPhi3, ids].forEach((x) => x.dispose());
  });

  it('names a fused tensor whose shape config.json does not imply', async () => {
    const dir = join(root, 'phi3-wrong-shape');
    const model = CausalLM.init(llama, { seed: 1 });
    await writePhi3Dir(dir, fuse(model.hfTensors()), { ...phi3Json, num_key_value_heads: 4 });
    model.dispose();
    await expect(openHfWeights(dir)).rejects.toThrow(/tensor 'model\.layers\.0\.self_attn\.qkv_proj\.weight' has shape \[32,16\], but config\.json implies \[48,16\]/);
  });
});
