/**
 * PEFT LoRA adapter folders: adapter_config.json + adapter_model.safetensors, as huggingface/peft saves
 * and loads them (`PeftModel.from_pretrained`).
 */
import { join } from 'node:path';
import { SafetensorsFile, writeSafetensors, type HostTensor } from '../formats/safetensors.ts';
import type { LoraConfig, LoraTarget } from '../model/lora-config.ts';
import { replaceDirAtomic, writeJsonAtomic } from '../util/atomic.ts';
import { SlmError } from '../util/errors.ts';
import { readJsonFile } from '../util/read-json.ts';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

export function peftAdapterConfig(config: LoraConfig, baseModel: string): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    r: config.rank,
    lora_alpha: config.alpha,
    lora_dropout: config.dropout,
    target_modules: config.targets,
    use_rslora: config.rslora,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
  };
}

export async function writePeftAdapter(dir: string, config: LoraConfig, tensors: HostTensor[], baseModel: string): Promise<void> {
  await replaceDirAtomic(dir, async (tmp) => {
    await writeJsonAtomic(join(tmp, ADAPTER_CONFIG_FILE), peftAdapterConfig(config, baseModel));
    await writeSafetensors(join(tmp, ADAPTER_WEIGHTS_FILE), tensors, { dtype: 'F32' });
  });
}

/** Reads a PEFT LoRA folder back: its config (validated) and tensors by name. */
export async function readPeftAdapter(dir: string): Promise<{ config: LoraConfig; baseModel: string; tensors: Map<string, HostTensor> }> {
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  const raw = (await readJsonFile(configPath, (_, detail, cause) => new SlmError(`${configPath}: ${detail}`, { code: 'ERR_ADAPTER', cause }))) as Record<string, unknown>;
  if (raw.peft_type !== 'LORA') throw new SlmError(`${configPath}: peft_type must be "LORA", got ${JSON.stringify(raw.peft_type)}`, { code: 'ERR_ADAPTER' });
  const targets = raw.target_modules;
  if (!Array.isArray(targets)) throw new SlmError(`${configPath}: target_modules must be a list of module names`, { code: 'ERR_ADAPTER' });
  const config: LoraConfig = {
    rank: Number(raw.r),
    alpha: Number(raw.lora_alpha),
    dropout: Number(raw.lora_dropout ?? 0),
    targets: targets as LoraTarget[],
    rslora: raw.use_rslora === true,
  };
  const file = await SafetensorsFile.open(join(dir, ADAPTER_WEIGHTS_FILE));
  try {
    const tensors = new Map<string, HostTensor>();
    for (const name of file.names()) tensors.set(name, { name, shape: file.info(name).shape, data: await file.read(name) });
    return { config, baseModel: String(raw.base_model_name_or_path ?? ''), tensors };
  } finally {
    await file.close();
  }
}
