/**
 * What an evaluation runs against: a local model (any model reference, a PEFT adapter folder on its base,
 * or a run folder's final/), or a teacher behind a server (generation only). Both answer `EvalRequest`s.
 */
import { availableParallelism } from 'node:os';
import { padIdOf } from '../../datasets/text-dataset.ts';
import { loadAdaptedModel } from '../model-files/adapted-model.ts';
import type { HostTensor } from '../formats/safetensors.ts';
import { startLlamaCppEngine, type GenerationEngine, type LlamaCppEngine } from './llama-cpp-engine.ts';
import type { CausalLM } from '../model/causal-lm.ts';
import type { Projection } from '../model/layers.ts';
import { generateBatch } from '../model/generate.ts';
import type { WeightResidency } from '../model/residency.ts';
import { scoreTokens } from '../model/score.ts';
import type { TeacherSpec } from '../recipe/index.ts';
import { createTeacher } from '../teachers/create.ts';
import type { TokenLogprob } from '../teachers/teacher.ts';
import { requestKey } from '../run/response-cache.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { SlmError } from '../util/errors.ts';

export interface GenerateRequestSpec {
  prompt: string;
  stop: string[];
  maxTokens: number;
}

export interface EvalTarget {
  /** As the user named it. */
  name: string;
  /**
   * Content digest of what answers (weights and adapter), or what identifies a served model; caches key
   * on it. Null: nothing identifies it, so no answer is cached.
   */
  digest: string | null;
  /** The model's chat template, for chat-style prompts. */
  chatTemplate: string | null;
  /** Greedy continuations, each cut before the first stop string. */
  generate(requests: GenerateRequestSpec[]): Promise<string[]>;
  /** Log P(continuation | context) per continuation, and whether it is the greedy one; local models only. */
  loglikelihood?(context: string, continuations: string[]): Promise<{ logprobs: number[]; greedy: boolean[] }>;
  /** Why a target without `loglikelihood` has none. */
  noLoglikelihood?: string;
  dispose(): void | Promise<void>;
}

/** Prompts generated together: more share each forward pass, until padding costs more than it saves. */
const GENERATION_BATCH = 8;

export interface LocalTargetOptions {
  weights?: WeightResidency;
  /** What decodes generation requests (see llama-cpp-engine.ts) [tfjs]. */
  engine?: GenerationEngine;
  /** Told which engine generates, and why llama.cpp is not used where `auto` would have taken it. */
  logger?: { info(message: string): void };
}

/** A model reference, a PEFT adapter folder (run beside its base, unmerged), or a run folder (its final/). */
export async function localTarget(ref: string, { weights, engine, logger }: LocalTargetOptions = {}): Promise<EvalTarget> {
  const loaded = await loadAdaptedModel(ref, { weights });
  if (!loaded.tokenizer) {
    loaded.dispose();
    throw new SlmError(`${ref}: the model has no tokenizer, which evaluation needs`, { code: 'ERR_EVAL' });
  }
  return new LocalTarget(ref, await loaded.digest(), loaded.model, loaded.tokenizer, loaded.chatTemplate, {
    project: loaded.project,
    ownsModel: false,
    onDispose: () => loaded.dispose(),
    engine,
    logger,
    tensors: () => loaded.mergedTensors(),
  });
}

export interface ModelTargetOptions {
  /** The projections to run with (a LoRA student's, adapters included). */
  project?: Projection;
  /** Whether disposing the target disposes the model [true]; false for a model still training. */
  ownsModel?: boolean;
  /** Called when the target is disposed (an adapter held beside the model). */
  onDispose?: () => void;
  engine?: GenerationEngine;
  logger?: { info(message: string): void };
  /** The weights llama.cpp would run, adapter merged in; the model's own by default. */
  tensors?: () => Iterable<HostTensor>;
}

/**
 * llama.cpp's threads: half the CPUs. Its workers spin while they wait, so on 2 CPUs 2 threads decoded the
 * benchmark model 4x slower than 1 (README, Benchmarks).
 */
function llamaCppThreads(): number {
  return Math.max(1, Math.floor(availableParallelism() / 2));
}

/** A model already in memory (a benchmark's, a test's, a student's during training) with its tokenizer. */
export function modelTarget(
  name: string,
  digest: string,
  model: CausalLM,
  tokenizer: Tokenizer,
  chatTemplate: string | null = null,
  options: ModelTargetOptions = {},
): EvalTarget {
  return new LocalTarget(name, digest, model, tokenizer, chatTemplate, options);
}

class LocalTarget implements EvalTarget {
  /** llama.cpp once started, or null when our own decoding generates. */
  private engine: Promise<LlamaCppEngine | null> | null = null;

  constructor(
    readonly name: string,
    readonly digest: string,
    readonly model: CausalLM,
    private readonly tokenizer: Tokenizer,
    readonly chatTemplate: string | null,
    private readonly options: ModelTargetOptions = {},
  ) {}

  async generate(requests: GenerateRequestSpec[]): Promise<string[]> {
    const engine = await (this.engine ??= this.startEngine());
    const outputs: string[] = [];
    if (engine) {
      for (const request of requests) outputs.push(await this.generateWith(engine, request)); // one llama.cpp sequence
      return outputs;
    }
    for (let start = 0; start < requests.length; start += GENERATION_BATCH) {
      outputs.push(...(await this.generateGroup(requests.slice(start, start + GENERATION_BATCH))));
    }
    return outputs;
  }

  /** llama.cpp when the options ask for it and it is exact here; null for our own decoding. */
  private async startEngine(): Promise<LlamaCppEngine | null> {
    const choice = this.options.engine ?? 'tfjs';
    if (choice === 'tfjs') return null;
    const source = { model: this.model, tokenizer: this.tokenizer, project: this.options.project, tensors: this.options.tensors ?? (() => this.model.eachHfTensor()) };
    const started = await startLlamaCppEngine(source, llamaCppThreads());
    if ('unavailable' in started) {
      if (choice === 'llama.cpp') throw new SlmError(`${this.name}: the llama.cpp engine cannot be used: ${started.unavailable}`, { code: 'ERR_EVAL' });
      this.options.logger?.info(`generating with tfjs: ${started.unavailable}`);
      return null;
    }
    this.options.logger?.info(`generating with llama.cpp (its probe log-probabilities within ${started.gateNats.toExponential(1)} nats of ours)`);
    return started;
  }

  /** One request through llama.cpp: the same prompt ids, stops and cut as our own decoding. */
  private async generateWith(engine: LlamaCppEngine, request: GenerateRequestSpec): Promise<string> {
    const decode = (ids: number[]) => this.tokenizer.decode(ids, { skipSpecialTokens: true });
    const prompt = this.tokenizer.encode(request.prompt, { addSpecialTokens: true });
    const ids = await engine.generate(prompt, request.maxTokens, (rowIds) => request.stop.some((s) => decode(rowIds).includes(s)));
    return cutAtStop(decode(ids), request.stop);
  }

  /** One batched generation; each row stops at EOS, its max tokens, or once its text holds a stop string. */
  private async generateGroup(requests: GenerateRequestSpec[]): Promise<string[]> {
    const decode = (ids: number[]) => this.tokenizer.decode(ids, { skipSpecialTokens: true });
    const prompts = requests.map((r) => this.tokenizer.encode(r.prompt, { addSpecialTokens: true }));
    const ids = await generateBatch(this.model, prompts, {
      project: this.options.project,
      maxTokens: Math.max(...requests.map((r) => r.maxTokens)),
      temperature: 0,
      topK: 0,
      topP: 1,
      seed: 0,
      padId: padIdOf(this.tokenizer),
      shouldStop: (row, rowIds) => rowIds.length >= requests[row].maxTokens || requests[row].stop.some((s) => decode(rowIds).includes(s)),
    });
    return ids.map((rowIds, row) => cutAtStop(decode(rowIds.slice(0, requests[row].maxTokens)), requests[row].stop));
  }

  /**
   * As the harness: the continuation's tokens are those of context + continuation after the context's
   * own tokens, so a continuation starting with a space tokenizes as it would in running text.
   */
  async loglikelihood(context: string, continuations: string[]): Promise<{ logprobs: number[]; greedy: boolean[] }> {
    const contextIds = this.tokenizer.encode(context, { addSpecialTokens: true });
    const logprobs: number[] = [];
    const greedy: boolean[] = [];
    for (const continuation of continuations) {
      const ids = this.continuationIds(contextIds, context, continuation);
      const scores = await scoreTokens(this.model, ids.all, 1, this.options.project);
      let sum = 0;
      let isGreedy = true;
      for (let i = ids.start; i < ids.all.length; i++) {
        sum += scores.logprobs[i]!;
        isGreedy &&= scores.topK[i]![0].id === ids.all[i];
      }
      logprobs.push(sum);
      greedy.push(isGreedy);
    }
    return { logprobs, greedy };
  }

  private continuationIds(contextIds: number[], context: string, continuation: string): { all: number[]; start: number } {
    const whole = this.tokenizer.encode(context + continuation, { addSpecialTokens: true });
    const sharesPrefix = contextIds.every((id, i) => whole[i] === id) && whole.length > contextIds.length;
    if (sharesPrefix) return { all: whole, start: contextIds.length };
    return { all: [...contextIds, ...this.tokenizer.encode(continuation, { addSpecialTokens: false })], start: contextIds.length };
  }

  /** The model goes at once (callers may count tensors right after); llama.cpp's engine is closed after. */
  async dispose(): Promise<void> {
    if (this.options.ownsModel ?? true) this.model.dispose();
    this.options.onDispose?.();
    // An engine that failed to start has nothing to close; its error went to the generate call.
    await (await this.engine?.catch(() => null))?.dispose();
  }
}

export type ServedApi = 'completions' | 'chat';

export interface ServerTargetOptions {
  /**
   * completions: the prompt as raw text (/v1/completions, Ollama `raw`), as the harness prompts API models
   * and local ones, so scores compare; chat: the prompt as one user turn, for instruct models [completions].
   */
  api?: ServedApi;
  /** Reuse cached answers by endpoint and name even when the server gives no model identity. */
  cacheByName?: boolean;
  /** Told when answers will not be cached, and why. */
  logger?: { warn(message: string): void };
}

/**
 * A model behind Ollama or an OpenAI-compatible server. Generation needs no logprobs. Log-likelihood (MMLU's
 * default) needs prompt logprobs: /v1/completions with echo, where the server has it (vLLM, llama-server).
 * Answers are cached under what identifies the served weights (see servedDigest), or not at all.
 */
export async function serverTarget(spec: TeacherSpec, options: ServerTargetOptions = {}): Promise<EvalTarget> {
  const api = options.api ?? 'completions';
  const handle = await createTeacher(spec);
  const teacher = handle.teacher;
  const name = `${spec.provider}:${spec.model}`;
  const [info, identity] = await Promise.all([teacher.info(), teacher.identity?.() ?? null]);
  const digest = identity || options.cacheByName ? servedDigest(spec, api, identity) : null;
  if (digest === null) {
    options.logger?.warn(
      `eval ${name}: the server gives no model identity (no details in /v1/models, no system_fingerprint), so its answers are not reused across invocations; --cache-by-name reuses them by endpoint and name`,
    );
  }
  const scorable = api === 'completions' && info.canScore && teacher.score;
  return {
    name,
    digest,
    chatTemplate: null,
    noLoglikelihood: scorable
      ? undefined
      : `${name}: log-likelihood needs prompt logprobs from /v1/completions with echo (vLLM, llama-server)${api === 'chat' ? ', not --api chat' : ', which this server does not give'}; use the generative variant (mmlu --mode generate)`,
    async generate(requests) {
      const samples = await teacher.generate(
        requests.map((r) => ({
          ...(api === 'chat' ? { messages: [{ role: 'user' as const, content: r.prompt }] } : { prompt: r.prompt, raw: true }),
          maxTokens: r.maxTokens, temperature: 0, topLogprobs: 0, logprobs: false, stop: r.stop, seed: 0,
        })),
      );
      return samples.map((sample, i) => cutAtStop(sample.text, requests[i].stop));
    },
    ...(scorable && { loglikelihood: (context: string, continuations: string[]) => servedLoglikelihood(teacher.score!.bind(teacher), context, continuations) }),
    dispose: () => handle.dispose(),
  };
}

/**
 * The cache's key for a served model: provider, endpoints, name, the server's identity for it, and the API
 * (a chat turn goes through the server's template, so it is another prompt).
 */
function servedDigest(spec: TeacherSpec, api: ServedApi, identity: Record<string, unknown> | null): string {
  const parts = { provider: spec.provider, endpoints: [...(spec.endpoints ?? [])].sort(), model: spec.model, api, identity };
  return `served:${requestKey(parts)}`;
}

/**
 * As the harness scores API models: the text context + continuation echoed with logprobs; the continuation's
 * tokens are those starting at or after the context's end, and it is greedy when each is its position's top.
 */
async function servedLoglikelihood(
  score: (texts: string[]) => Promise<TokenLogprob[][]>,
  context: string,
  continuations: string[],
): Promise<{ logprobs: number[]; greedy: boolean[] }> {
  const scored = await score(continuations.map((continuation) => context + continuation));
  const logprobs: number[] = [];
  const greedy: boolean[] = [];
  for (const [i, tokens] of scored.entries()) {
    if (tokens.some((token) => token.offset === undefined)) {
      throw new SlmError('served log-likelihood: the server echoed tokens without `text_offset`, so the continuation cannot be told from the context', { code: 'ERR_EVAL' });
    }
    const own = tokens.filter((token) => token.offset! >= context.length);
    if (own.length === 0) throw new SlmError(`served log-likelihood: no echoed token of continuation ${JSON.stringify(continuations[i])}`, { code: 'ERR_EVAL' });
    logprobs.push(own.reduce((sum, token) => sum + token.logprob, 0));
    greedy.push(own.every((token) => token.top.length > 0 && token.logprob >= token.top[0].logprob));
  }
  return { logprobs, greedy };
}

/** The text before the first stop string (servers stop there too, but may include it). */
export function cutAtStop(text: string, stop: readonly string[]): string {
  const cut = Math.min(...stop.map((s) => text.indexOf(s)).filter((i) => i >= 0), text.length);
  return text.slice(0, cut);
}
