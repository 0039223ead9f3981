/**
 * A teacher loaded in this process (a Hugging Face folder, a GGUF file or an ollama: model, through the
 * project's own model). Unlike a server it sees the full next-token distribution at every position of any
 * sequence, so it can label existing text, and it gives token ids, not only token strings.
 */
import { promptEncoder, type PromptEncoder } from '../../datasets/prompt-ids.ts';
import type { CausalLM } from '../model/causal-lm.ts';
import { generateTokens } from '../model/generate.ts';
import { modelDigest } from '../model/digest.ts';
import { loadModel } from '../model/load.ts';
import { logSoftmax, scoreTokens, topEntries } from '../model/score.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { TeacherConfigError } from './errors.ts';
import { validateGenerateRequest, type GenerateRequest, type Sample, type Teacher, type TeacherInfo, type TokenLogprob } from './teacher.ts';

export interface LocalTeacherOptions {
  /** Alternatives kept per position by `score` (generation uses each request's topLogprobs). */
  scoreTopK?: number;
  /** Told the model's size before its weights are read. */
  logger?: { info(message: string): void };
  /** The content digest of the weights (`load` computes it), for caches. */
  digest?: string;
}

export class LocalTeacher implements Teacher {
  /** The prompt ids of a request, as this model is prompted (its chat template, or a plain prompt). */
  readonly encodePrompt: PromptEncoder;

  constructor(
    private readonly name: string,
    readonly model: CausalLM,
    readonly tokenizer: Tokenizer,
    chatTemplate: string | null,
    private readonly options: LocalTeacherOptions = {},
  ) {
    this.encodePrompt = promptEncoder(tokenizer, chatTemplate, `local teacher ${name}`);
  }

  static async load(ref: string, options: LocalTeacherOptions = {}): Promise<LocalTeacher> {
    const [{ model, tokenizer, chatTemplate }, digest] = await Promise.all([loadModel(ref, { logger: options.logger }), modelDigest(ref)]);
    if (!tokenizer) {
      model.dispose();
      throw new TeacherConfigError(`local teacher ${ref}: the model has no tokenizer`);
    }
    return new LocalTeacher(ref, model, tokenizer, chatTemplate, { ...options, digest });
  }

  async info(): Promise<TeacherInfo> {
    return { provider: 'local', model: this.name, digest: this.options.digest, canScore: true };
  }

  async generate(requests: GenerateRequest[]): Promise<Sample[]> {
    requests.forEach(validateGenerateRequest);
    const samples: Sample[] = [];
    for (const request of requests) samples.push(await this.generateOne(request));
    return samples;
  }

  /**
   * Log-probabilities of each token of each text given the ones before it, with the `scoreTopK` most likely
   * alternatives: the model's own softmax. The first token has no context: logprob NaN, no alternatives.
   */
  async score(texts: string[]): Promise<TokenLogprob[][]> {
    const k = this.options.scoreTopK ?? 20;
    const results: TokenLogprob[][] = [];
    for (const text of texts) results.push(await this.scoreIds(this.tokenizer.encode(text, { addSpecialTokens: true }), k));
    return results;
  }

  /** `score` for a sequence already in this model's token ids. */
  async scoreIds(ids: readonly number[], k: number): Promise<TokenLogprob[]> {
    const scores = await scoreTokens(this.model, [...ids], k);
    return scores.ids.map((id, i) => this.tokenLogprob(id, scores.logprobs[i] ?? Number.NaN, scores.topK[i] ?? []));
  }

  private async generateOne(request: GenerateRequest): Promise<Sample> {
    const promptIds = this.encodePrompt(request);
    const ids: number[] = [];
    const tokens: TokenLogprob[] = [];
    let pending: Float32Array | null = null;
    let finishReason = 'length';
    const generation = generateTokens(this.model, promptIds, {
      maxTokens: request.maxTokens,
      temperature: request.temperature,
      topK: 0,
      topP: 1,
      seed: request.seed ?? 0,
      onLogits: (logits) => (pending = logSoftmax(logits)),
    });
    for await (const id of generation) {
      const row = pending!;
      ids.push(id);
      tokens.push(this.tokenLogprob(id, row[id], topEntries(row, request.topLogprobs)));
      if (id === this.tokenizer.eosId) {
        finishReason = 'stop';
        break;
      }
      const text = this.tokenizer.decode(ids, { skipSpecialTokens: true });
      if (request.stop?.some((stop) => text.includes(stop))) {
        finishReason = 'stop';
        break;
      }
    }
    return { text: this.tokenizer.decode(ids, { skipSpecialTokens: true }), tokens, finishReason };
  }

  private tokenLogprob(id: number, logprob: number, top: { id: number; logprob: number }[]): TokenLogprob {
    return {
      token: this.tokenizer.decode([id]),
      id,
      logprob,
      top: top.map((entry) => ({ token: this.tokenizer.decode([entry.id]), id: entry.id, logprob: entry.logprob })),
    };
  }

  dispose(): void {
    this.model.dispose();
  }
}
