import type { HostTensor } from '../../src/formats/safetensors.ts';
import type { Rng } from '../../src/util/rng.ts';

/** A named tensor of normal values times `scale`, for format round trips. */
export function randomTensor(rng: Rng, name: string, shape: number[], scale = 1): HostTensor {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * scale;
  return { name, shape, data };
}
