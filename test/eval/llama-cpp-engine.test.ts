/**
 * llama.cpp as the generation engine of a local model: used where its probe log-probabilities match ours
 * (then its greedy answers are ours), refused or passed over where they do not (Gemma's GeGLU, which
 * llama.cpp's CPU reads from an F16 table) or where the model has no GGUF form.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { modelTarget, type GenerateRequestSpec } from '../../src/eval/targets.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig, type ModelConfigInput } from '../../src/model/config.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { disposeLlamaCpp } from '../helpers/llama-cpp.ts';
import { TINY_GEMMA2 } from '../helpers/tiny-model.ts';

await initBackend('wasm');
afterAll(() => disposeLlamaCpp());

const tokenizer = createByteLevelTokenizer();
const SHAPE = { vocabSize: tokenizer.vocabSize, hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, bosTokenId: 256, eosTokenId: 257, maxPositionEmbeddings: 256 };
const REQUESTS: GenerateRequestSpec[] = [
  { prompt: 'Question: 2 + 3 =', stop: ['\n\n'], maxTokens: 12 },
  { prompt: 'Once upon a time', stop: ['.'], maxTokens: 16 },
  { prompt: 'The answer is', stop: [], maxTokens: 8 },
];

function target(overrides: Partial<ModelConfigInput>, engine: 'tfjs' | 'auto' | 'llama.cpp', logged: string[] = []) {
  const model = CausalLM.init(resolveModelConfig({ ...SHAPE, ...overrides }), { seed: 4, std: 0.12 });
  return modelTarget('scratch', 'sha256:scratch', model, tokenizer, null, { engine, logger: { info: (line) => logged.push(line) } });
}

describe('the llama.cpp generation engine', () => {
  it('answers greedily as our own decoding does, after its probe agrees within 1e-4 nats', async () => {
    const logged: string[] = [];
    const [cpp, ours] = [target({}, 'llama.cpp', logged), target({}, 'tfjs')];
    const answers = await cpp.generate(REQUESTS);
    expect(answers).toEqual(await ours.generate(REQUESTS));
    expect(answers.some((a) => a.length > 0)).toBe(true);
    expect(logged.join('\n')).toMatch(/generating with llama\.cpp \(its probe log-probabilities within \d\.\de-\d+ nats of ours\)/);
    await cpp.dispose();
    await ours.dispose();
  });

  it('is refused where its log-probabilities differ (Gemma 2: GeGLU through an F16 table), and passed over by auto', async () => {
    const gemma = { ...TINY_GEMMA2, embeddingScale: 8, queryPreAttnScalar: 16, slidingWindow: 8 };
    const explicit = target(gemma, 'llama.cpp');
    await expect(explicit.generate(REQUESTS)).rejects.toThrow(/the llama\.cpp engine cannot be used: llama\.cpp's log-probabilities differ from ours by .* nats on a probe \(more than 0\.0001\)/);
    await explicit.dispose();
    const logged: string[] = [];
    const [auto, ours] = [target(gemma, 'auto', logged), target(gemma, 'tfjs')];
    expect(await auto.generate(REQUESTS)).toEqual(await ours.generate(REQUESTS));
    expect(logged).toEqual([expect.stringMatching(/^generating with tfjs: llama\.cpp's log-probabilities differ/)]);
    await auto.dispose();
    await ours.dispose();
  });

  it('is passed over for a model with no GGUF form (partial rotary embeddings)', async () => {
    const logged: string[] = [];
    const auto = target({ rotaryDim: 8 }, 'auto', logged);
    await auto.generate(REQUESTS.slice(0, 1));
    expect(logged[0]).toMatch(/^generating with tfjs: the model cannot be written to GGUF: .*partial rotary/);
    await auto.dispose();
  });
});
