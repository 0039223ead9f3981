/**
 * A Hugging Face folder of a real model's exact size whose weights file is sparse: a safetensors header
 * describing every BF16 tensor, and a file extended to the full length without writing its data. What
 * reads only config.json and tensor headers (inspectModel, the memory plan) sees a 3B model at once.
 */
import { open, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { hfConfigJson } from '../../src/model-files/hf-model-dir.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { parameterSpecs } from '../../src/model/parameters.ts';

export async function writeSparseModel(dir: string, config: ModelConfig): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(hfConfigJson(config, 'BF16')));
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const spec of parameterSpecs(config)) {
    const bytes = spec.hfShape.reduce((a, b) => a * b, 1) * 2;
    header[spec.name] = { dtype: 'BF16', shape: spec.hfShape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header).padEnd(Math.ceil(JSON.stringify(header).length / 8) * 8, ' '));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const file = await open(join(dir, 'model.safetensors'), 'w');
  await file.write(Buffer.concat([length, json]), 0);
  await file.truncate(8 + json.length + offset);
  await file.close();
}
