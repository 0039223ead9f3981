/**
 * LoRA adapters as GGUF, the layout llama.cpp's convert_lora_to_gguf.py writes and `--lora` /
 * Ollama's ADAPTER load: `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`, and per
 * adapted weight `<gguf name>.lora_a` [r, in] and `.lora_b` [out, r]. llama.cpp scales by alpha / r, and
 * for arch llama the q/k rows are interleaved, which applies to lora_b (the rows of the update).
 */
import { ggufArchitectureOf, type ExportedGgufArchitecture } from '../model-files/gguf-model-config.ts';
import { interleavedHeads, interleaveHeadRows, ggufTensorName } from '../model-files/gguf-tensors.ts';
import { GgufWriter } from '../formats/gguf/index.ts';
import type { HostTensor } from '../formats/safetensors.ts';
import type { ModelConfig } from '../model/config.ts';
import type { LoraConfig } from '../model/lora-config.ts';

const PEFT_NAME = /^base_model\.model\.(.+)\.lora_([AB])\.weight$/;

export async function exportGgufLora(path: string, model: ModelConfig, lora: LoraConfig, peftTensors: HostTensor[]): Promise<void> {
  const arch = ggufArchitectureOf(model);
  const writer = new GgufWriter(path);
  writer.addString('general.architecture', arch);
  writer.addString('general.type', 'adapter');
  writer.addString('adapter.type', 'lora');
  // llama.cpp always scales by alpha / r: rsLoRA's alpha / sqrt(r) becomes an alpha of alpha * sqrt(r).
  writer.addFloat32('adapter.lora.alpha', lora.rslora ? lora.alpha * Math.sqrt(lora.rank) : lora.alpha);
  const tensors = peftTensors.map((tensor) => toGgufLora(tensor, model, arch));
  for (const tensor of tensors) writer.addTensorInfo(tensor.name, tensor.shape, 'F32');
  await writer.write(tensors);
}

function toGgufLora(tensor: HostTensor, model: ModelConfig, arch: ExportedGgufArchitecture): HostTensor {
  const [, module, matrix] = PEFT_NAME.exec(tensor.name) ?? [];
  const base = module && ggufTensorName(`${module}.weight`, model);
  if (!base) throw new RangeError(`no GGUF name is known for adapter tensor '${tensor.name}'`);
  const name = `${base}.lora_${matrix.toLowerCase()}`;
  const heads = matrix === 'B' ? interleavedHeads(base, model, arch) : undefined;
  return { name, shape: tensor.shape, data: heads ? interleaveHeadRows(tensor.data, tensor.shape[1], heads) : tensor.data };
}
