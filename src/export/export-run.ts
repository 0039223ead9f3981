/**
 * The export stage: turns a finished run's final/ into the formats people run. A scratch run's final/ is a
 * Hugging Face folder; a LoRA run's is a PEFT adapter, merged into its base for the full-model formats.
 * Everything is written under runs/<name>/export/<format>/.
 */
import { basename, join } from 'node:path';
import { exportGguf, readGgufModelConfig, type GgufExportType } from '../model-files/gguf-model.ts';
import { readHfConfig, writeHfModelDir } from '../model-files/hf-model-dir.ts';
import { ollamaModelfile } from '../formats/modelfile.ts';
import type { HostTensor, WritableDtype } from '../formats/safetensors.ts';
import type { CausalLM } from '../model/causal-lm.ts';
import type { ModelConfig } from '../model/config.ts';
import { loadModel } from '../model-files/load.ts';
import { LoraAdapter } from '../model/lora.ts';
import { loadRecipe, type LoraStudentSpec, type Recipe } from '../recipe/index.ts';
import { runPathsAt } from '../run/layout.ts';
import { openGgufSource, tokenizerFiles, type TokenizerFiles } from '../tokenizer/tokenizer-files.ts';
import { replaceDirAtomic, writeFileAtomic } from '../util/atomic.ts';
import { SlmError } from '../util/errors.ts';
import { pathExists } from '../util/path-exists.ts';
import { exportGgufLora } from './gguf-lora.ts';
import { readPeftAdapter, writePeftAdapter } from '../model-files/peft.ts';

const ADAPTER_GGUF = 'adapter-lora.gguf';

export type ExportFormat = 'peft' | 'hf' | 'gguf' | 'gguf-lora' | 'ollama';

export interface ExportOptions {
  /** The run folder, runs/<name>. */
  run: string;
  format: ExportFormat;
  /** Tensor storage: safetensors dtype for hf, GGUF type for gguf and ollama. */
  dtype?: WritableDtype;
  ggufType?: GgufExportType;
}

export interface ExportResult {
  format: ExportFormat;
  /** The folder the export was written to. */
  path: string;
  files: string[];
}

export async function exportRun(options: ExportOptions): Promise<ExportResult> {
  const paths = runPathsAt(options.run);
  if (!(await pathExists(paths.final))) {
    throw new SlmError(`${options.run}: no final/ yet; run the recipe to the end first`, { code: 'ERR_EXPORT' });
  }
  const recipe = await loadRecipe(paths.recipe);
  const out = join(paths.root, 'export', options.format);
  switch (options.format) {
    case 'peft':
      return exportPeft(recipe, paths.final, out);
    case 'hf':
      return withMergedModel(recipe, paths.final, async ({ model, tensors }, tokenizer) => {
        const dtype = options.dtype ?? (model.frozen ? 'BF16' : 'F32');
        await writeHfModelDir(out, { config: model.config, tensors, dtype, tokenizerJson: tokenizer.json, tokenizerConfig: tokenizer.config });
        return { format: 'hf', path: out, files: ['config.json', 'model.safetensors', 'tokenizer.json', ...(tokenizer.config ? ['tokenizer_config.json'] : [])] };
      });
    case 'gguf-lora':
      return exportLoraGguf(recipe, paths.final, out);
    case 'ollama':
      if (recipe.student.type === 'lora' && recipe.student.base.startsWith('ollama:')) return exportOllamaAdapter(recipe, paths.final, out);
      return exportMergedGguf(recipe, paths.final, out, options);
    case 'gguf':
      return exportMergedGguf(recipe, paths.final, out, options);
  }
}

/** One GGUF of the whole (merged) model; for ollama, with a Modelfile FROM it. */
async function exportMergedGguf(recipe: Recipe, finalDir: string, out: string, options: ExportOptions): Promise<ExportResult> {
  return withMergedModel(recipe, finalDir, async ({ model, tensors }, tokenizer) => {
    const type = options.ggufType ?? 'F16';
    const file = `${recipe.name}-${type.toLowerCase()}.gguf`;
    await replaceDirAtomic(out, async (tmp) => {
      await exportGguf(model, tokenizer, join(tmp, file), { type, name: recipe.name, tensors });
      if (options.format === 'ollama') await writeFileAtomic(join(tmp, 'Modelfile'), modelfileFor(file, tokenizer));
    });
    return { format: options.format, path: out, files: options.format === 'ollama' ? [file, 'Modelfile'] : [file] };
  });
}

function requireLora(recipe: Recipe, format: ExportFormat): LoraStudentSpec {
  if (recipe.student.type !== 'lora') {
    throw new SlmError(`run '${recipe.name}' trained every weight of its model (student.type ${recipe.student.type}), not LoRA adapters: export it as hf, gguf or ollama, not ${format}`, { code: 'ERR_EXPORT' });
  }
  return recipe.student;
}

async function exportPeft(recipe: Recipe, finalDir: string, out: string): Promise<ExportResult> {
  requireLora(recipe, 'peft');
  const adapter = await readPeftAdapter(finalDir);
  await writePeftAdapter(out, adapter.config, [...adapter.tensors.values()], adapter.baseModel);
  return { format: 'peft', path: out, files: ['adapter_config.json', 'adapter_model.safetensors'] };
}

/** The adapter alone as a GGUF LoRA, for llama.cpp's --lora or Ollama's ADAPTER over the unchanged base. */
async function exportLoraGguf(recipe: Recipe, finalDir: string, out: string): Promise<ExportResult> {
  await replaceDirAtomic(out, (tmp) => writeLoraGguf(recipe, finalDir, join(tmp, ADAPTER_GGUF)));
  return { format: 'gguf-lora', path: out, files: [ADAPTER_GGUF] };
}

/** A base that Ollama already has: FROM it, ADAPTER the trained LoRA; nothing large is copied. */
async function exportOllamaAdapter(recipe: Recipe, finalDir: string, out: string): Promise<ExportResult> {
  const base = requireLora(recipe, 'ollama').base;
  await replaceDirAtomic(out, async (tmp) => {
    await writeLoraGguf(recipe, finalDir, join(tmp, ADAPTER_GGUF));
    await writeFileAtomic(join(tmp, 'Modelfile'), ollamaModelfile({ from: base.slice('ollama:'.length), adapter: `./${ADAPTER_GGUF}` }));
  });
  return { format: 'ollama', path: out, files: [ADAPTER_GGUF, 'Modelfile'] };
}

async function writeLoraGguf(recipe: Recipe, finalDir: string, path: string): Promise<void> {
  const spec = requireLora(recipe, 'gguf-lora');
  const saved = await readPeftAdapter(finalDir);
  const config = await baseConfig(spec.base);
  await exportGgufLora(path, config, saved.config, [...saved.tensors.values()]);
}

/** The base model's architecture, read without loading its weights. */
async function baseConfig(base: string): Promise<ModelConfig> {
  const file = await openGgufSource(base);
  if (!file) return (await readHfConfig(base)).config;
  try {
    return await readGgufModelConfig(file);
  } finally {
    await file.close();
  }
}

/**
 * The trained model and its tensors with any adapter merged in, produced one at a time as they are
 * written (a streamed base is never float32 whole), and its tokenizer files; disposed after `use`.
 */
async function withMergedModel<T>(
  recipe: Recipe,
  finalDir: string,
  use: (merged: { model: CausalLM; tensors: Iterable<HostTensor> }, tokenizer: TokenizerFiles) => Promise<T>,
): Promise<T> {
  const source = recipe.student.type === 'lora' ? recipe.student.base : finalDir;
  const { model } = await loadModel(source);
  const saved = recipe.student.type === 'lora' ? await readPeftAdapter(finalDir) : null;
  const adapter = saved && LoraAdapter.fromPeftTensors(model, saved.config, saved.tensors);
  try {
    return await use({ model, tensors: adapter ? adapter.mergedHfTensors(model) : model.eachHfTensor() }, await tokenizerFiles(source));
  } finally {
    adapter?.dispose();
    model.dispose();
  }
}

/** FROM the exported GGUF; Ollama reads the chat template from the GGUF's metadata. */
function modelfileFor(ggufFile: string, tokenizer: TokenizerFiles): string {
  const eos = typeof tokenizer.config?.eos_token === 'string' ? tokenizer.config.eos_token : undefined;
  return ollamaModelfile({ from: `./${basename(ggufFile)}`, parameters: eos ? { stop: [eos] } : undefined });
}
