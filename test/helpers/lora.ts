import * as tf from '@tensorflow/tfjs-core';
import type { LoraAdapter } from '../../src/model/lora.ts';
import { Rng } from '../../src/util/rng.ts';

/** Sets every B to normal(0, std) values, so the adapter changes the model and A gets a gradient too. */
export function randomizeLoraB(adapter: LoraAdapter, seed: number, std: number): void {
  const rng = new Rng(seed);
  for (const [name, p] of adapter.params) {
    if (!name.includes('lora_B')) continue;
    const values = tf.tensor(Array.from({ length: p.size }, () => rng.normal() * std), p.shape);
    p.assign(values);
    values.dispose();
  }
}
