import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attention, mlp, rmsNorm } from '../../src/model/layers.ts';
import { rotaryTables } from '../../src/model/rope.ts';
import { Rng } from '../../src/util/rng.ts';
import { crossEntropy } from '../../trainers/losses/cross-entropy.ts';
import { expectGradientMatchesFiniteDifferences, readAndDispose } from '../helpers/finite-differences.ts';
import { randomIds, TINY_GEMMA2, tinyConfig, tinyModel } from '../helpers/tiny-model.ts';
import type { CausalLM } from '../../src/model/causal-lm.ts';

/** A fixed random projection turns a block's output into a scalar whose gradient reaches every output. */
function projectToScalar(y: tf.Tensor, seed: number): tf.Scalar {
  const rng = new Rng(seed);
  const weights = tf.tensor(Array.from({ length: y.size }, () => rng.normal()), y.shape);
  return tf.sum(tf.mul(y, weights)) as tf.Scalar;
}

function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = new Rng(seed);
  return tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * scale), shape);
}

/** Shared by the cpu, wasm and webgpu test files: wasm runs its own product and slicing kernels (see matmul.ts). */
export function gradientSuite(): void {
  describe('gradients match finite differences', () => {
    const config = tinyConfig();
    const model = tinyModel();
    const [B, T, D] = [2, 5, config.hiddenSize];

    it('RMSNorm, with respect to input and gain', async () => {
      const x = randomTensor([B, T, D], 1);
      const w = randomTensor([D], 2);
      await expectGradientMatchesFiniteDifferences((xi) => projectToScalar(rmsNorm(xi, w, 1e-5), 3), x);
      await expectGradientMatchesFiniteDifferences((wi) => projectToScalar(rmsNorm(x, wi, 1e-5), 3), w);
    });

    it('attention (GQA, rotary, causal mask, biases), with respect to its input', async () => {
      const x = randomTensor([B, T, D], 4) as tf.Tensor3D;
      const inputs = { rope: rotaryTables(config, 0, T, 1 / Math.sqrt(config.headDim)) };
      await expectGradientMatchesFiniteDifferences((xi) => projectToScalar(attention(xi as tf.Tensor3D, 0, config, model.param, model.project, inputs), 5), x, { samples: 10 });
    });

    const gemma = tinyModel(TINY_GEMMA2, 11);

    it('attention with soft-capped scores and a sliding window (Gemma 2), with respect to its input', async () => {
      const x = randomTensor([B, T, D], 14, 2) as tf.Tensor3D;
      const inputs = { rope: rotaryTables(gemma.config, 0, T, 1 / Math.sqrt(gemma.config.queryPreAttnScalar)), firstKey: (_: number, position: number) => Math.max(0, position - 2) };
      await expectGradientMatchesFiniteDifferences((xi) => projectToScalar(attention(xi as tf.Tensor3D, 0, gemma.config, gemma.param, gemma.project, inputs), 15), x, { samples: 10 });
    });

    it.each([
      ['SwiGLU', model],
      ['GeGLU (Gemma)', gemma],
    ])('%s MLP, with respect to its input', async (_, m) => {
      const x = randomTensor([B, T, D], 6) as tf.Tensor3D;
      await expectGradientMatchesFiniteDifferences((xi) => projectToScalar(mlp(xi as tf.Tensor3D, 1, m.config, m.project), 7), x);
    });

    it('cross-entropy with a mask, with respect to the logits', async () => {
      const logits = randomTensor([6, config.vocabSize], 8, 2);
      const targets = tf.tensor1d([0, 5, 22, 3, 3, 9], 'int32');
      const mask = tf.tensor1d([1, 0, 1, 1, 0, 1]);
      await expectGradientMatchesFiniteDifferences((l) => crossEntropy(l as tf.Tensor2D, targets, mask), logits, { samples: 12 });
    });

    it.each([
      ['Llama-family', model],
      ['Gemma 2', gemma],
    ])('the full %s model loss, with respect to every parameter', async (_, m) => {
      await expectModelGradients(m, B, T);
    });
  });
}

/** Central differences of the cross-entropy for three random entries of each parameter, against tfjs's gradient. */
async function expectModelGradients(model: CausalLM, B: number, T: number): Promise<void> {
  const { vocabSize } = model.config;
  const rng = new Rng(9);
  const ids = randomIds(rng, B, T, vocabSize);
  const targets = tf.reshape(randomIds(rng, B, T, vocabSize), [B * T]) as tf.Tensor1D;
  const mask = tf.ones([B * T]) as tf.Tensor1D;
  const loss = () => crossEntropy(tf.reshape(model.forward(ids), [B * T, vocabSize]) as tf.Tensor2D, targets, mask);
  const { grads } = tf.variableGrads(loss, [...model.params.values()]);
  for (const [name, param] of model.params) {
    const base = ((await param.data()) as Float32Array).slice();
    const analytic = await grads[param.name].data();
    const lossWith = async (i: number, delta: number) => {
      const values = base.slice();
      values[i] += delta;
      tf.tidy(() => param.assign(tf.tensor(values, param.shape)));
      return (await readAndDispose(tf.tidy(() => loss())))[0];
    };
    for (let s = 0; s < 3; s++) {
      const i = rng.int(base.length);
      const numeric = ((await lossWith(i, 1e-2)) - (await lossWith(i, -1e-2))) / 2e-2;
      expect(Math.abs(analytic[i] - numeric), `${name}[${i}]: ${analytic[i]} vs ${numeric}`).toBeLessThanOrEqual(2e-3 + 3e-2 * Math.abs(numeric));
    }
    tf.tidy(() => param.assign(tf.tensor(base, param.shape)));
  }
}
