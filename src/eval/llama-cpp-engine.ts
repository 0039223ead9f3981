/**
 * Real llama.cpp (the node-llama-cpp package, when installed) as the decoding engine of a local model's
 * generation: the model, its adapter merged in, exported to an F32 GGUF and run with an F32 KV cache. It is
 * used only where it computes what we compute: before any answer, both score a probe sequence, and llama.cpp
 * is taken only when every log-probability agrees within GATE_NATS. Prompts and answers are token ids, our
 * tokenizer's on both sides, so only the model's arithmetic differs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Llama, LlamaContext, LlamaModel, Token } from 'node-llama-cpp';
import { loadOptionalPackage } from '../backend/optional-package.ts';
import { exportGguf } from '../model-files/gguf-model.ts';
import type { HostTensor } from '../formats/safetensors.ts';
import type { CausalLM } from '../model/causal-lm.ts';
import type { Projection } from '../model/layers.ts';
import { scoreTokens } from '../model/score.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';

/** `tfjs`: our own decoding; `llama.cpp`: llama.cpp or an error; `auto`: llama.cpp where it is installed and exact. */
export type GenerationEngine = 'auto' | 'tfjs' | 'llama.cpp';

/** The largest difference in any probe log-probability for llama.cpp to be used. */
export const GATE_NATS = 1e-4;

export interface LlamaCppEngine {
  /** Greedy ids after `prompt` until a stop id, `maxTokens`, or `shouldStop` says so. */
  generate(prompt: number[], maxTokens: number, shouldStop: (ids: number[]) => boolean): Promise<number[]>;
  /** The largest probe log-probability difference measured by the gate. */
  readonly gateNats: number;
  dispose(): Promise<void>;
}

export interface EngineSource {
  model: CausalLM;
  tokenizer: Tokenizer;
  project?: Projection;
  /** The weights to export, adapter merged in. */
  tensors(): Iterable<HostTensor>;
}

/** llama.cpp for this model, or why it is not used (not installed, not exportable, not exact). */
export async function startLlamaCppEngine(source: EngineSource, threads: number): Promise<LlamaCppEngine | { unavailable: string }> {
  const contextSize = Math.min(source.model.config.maxPositionEmbeddings, 4096);
  const opened = await openLlamaCpp(source, { threads, contextSize });
  if ('unavailable' in opened) return opened;
  try {
    const gateNats = await probeDifference(source, opened.context);
    if (!(gateNats <= GATE_NATS)) {
      await opened.close();
      return { unavailable: `llama.cpp's log-probabilities differ from ours by ${gateNats.toExponential(1)} nats on a probe (more than ${GATE_NATS})` };
    }
    return engineOver(opened.context, new Set(source.model.config.stopTokenIds), gateNats, opened.close);
  } catch (error) {
    await opened.close();
    throw error;
  }
}

export interface LlamaCppContext {
  context: LlamaContext;
  /** Frees the context, the model, llama.cpp and the exported file. */
  close(): Promise<void>;
}

/**
 * `source`'s F32 GGUF export loaded in llama.cpp, with an F32 KV cache and flash attention off (both would
 * otherwise round keys and values to F16); or why not: node-llama-cpp absent or broken, or no GGUF form.
 */
export async function openLlamaCpp(
  source: Pick<EngineSource, 'model' | 'tokenizer' | 'tensors'>,
  { threads, contextSize }: { threads: number; contextSize: number },
): Promise<LlamaCppContext | { unavailable: string }> {
  const loaded = await loadOptionalPackage('node-llama-cpp');
  if (loaded.status !== 'loaded') return { unavailable: loaded.status === 'not-installed' ? 'node-llama-cpp is not installed' : `node-llama-cpp did not load: ${loaded.message}` };
  const { getLlama, LlamaLogLevel } = loaded.module as typeof import('node-llama-cpp');
  const dir = await mkdtemp(join(tmpdir(), 'slm-llama-cpp-'));
  let llama: Llama | undefined;
  let model: LlamaModel | undefined;
  let context: LlamaContext | undefined;
  const close = async () => {
    await context?.dispose();
    await model?.dispose();
    await llama?.dispose();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const path = join(dir, 'model.gguf');
    try {
      await exportGguf(source.model, { json: source.tokenizer.toJSON() }, path, { type: 'F32', tensors: source.tensors() });
    } catch (error) {
      await close();
      return { unavailable: `the model cannot be written to GGUF: ${(error as Error).message}` };
    }
    llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
    model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    context = await model.createContext({ contextSize, threads, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
    return { context, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** A probe of ordinary text: every position's next-token log-probability, ours against llama.cpp's. */
async function probeDifference(source: EngineSource, context: LlamaContext): Promise<number> {
  const ids = source.tokenizer.encode('The quick brown fox jumps over the lazy dog. 1 + 2 = 3, and 12 * 4 = 48.', { addSpecialTokens: true });
  const ours = await scoreTokens(source.model, ids, 0, source.project);
  const vocab = source.model.config.vocabSize;
  const options = { temperature: 1, topK: vocab, topP: 1, minP: 0 };
  const sequence = context.getSequence();
  try {
    const outputs = await sequence.controlledEvaluate(ids.map((id) => [id as Token, { generateNext: { probabilities: true, options } }]));
    let worst = 0;
    for (let i = 1; i < ids.length; i++) {
      const probability = outputs[i - 1]?.next.probabilities?.get(ids[i] as Token) ?? 0;
      worst = Math.max(worst, Math.abs(Math.log(probability) - ours.logprobs[i]!));
    }
    return worst;
  } finally {
    sequence.dispose();
  }
}

function engineOver(context: LlamaContext, stopIds: Set<number>, gateNats: number, close: () => Promise<void>): LlamaCppEngine {
  return {
    gateNats,
    async generate(prompt, maxTokens, shouldStop) {
      const sequence = context.getSequence();
      const ids: number[] = [];
      try {
        if (maxTokens <= 0) return ids;
        for await (const token of sequence.evaluate(prompt as Token[], { temperature: 0 })) {
          if (stopIds.has(token)) break;
          ids.push(token);
          if (ids.length >= maxTokens || shouldStop(ids)) break;
        }
        return ids;
      } finally {
        sequence.dispose();
      }
    },
    dispose: close,
  };
}
