/**
 * A teacher loaded in this process (a Hugging Face folder, a GGUF file or an ollama: model, through the
 * project's own model). Unlike a server it sees the full next-token distribution at every position of any
 * sequence, so it can label existing text, and it gives token ids, not only token strings.
 */
import { compileChatTemplate } from '../../datasets/chat-template.ts';
import type { CausalLM } from '../model/causal-lm.ts';
import { generateTokens } from '../model/generate.ts';
import { loadModel } from '../model/load.ts';
import { logSoftmax, scoreTokens, topEntries } from '../model/score.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { TeacherConfigError } from './errors.ts';
import { requestMessages, validateGenerateRequest, type GenerateRequest, type Sample, type Teacher, type TeacherInfo, type TokenLogprob } from './teacher.ts';

export interface LocalTeacherOptions {
  /** Alternatives kept per position by `score` (generation uses each request's topLogprobs). */
  scoreTopK?: number;
}

export class LocalTeacher implements Teacher {
  private readonly template: ReturnType<typeof compileChatTemplate> | null;

  constructor(
    private readonly name: string,
    readonly model: CausalLM,
    readonly tokenizer: Tokenizer,
    chatTemplate: string | null,
    private readonly options: LocalTeacherOptions = {},
  ) {
    this.template = chatTemplate ? compileChatTemplate(chatTemplate) : null;
  }

  static async load(ref: string, options: LocalTeacherOptions = {}): Promise<LocalTeacher> {
    const { model, tokenizer, chatTemplate } = await loadModel(ref);
    if (!tokenizer) {
      model.dispose();
      throw new TeacherConfigError(`local teacher ${ref}: the model has no tokenizer`);
    }
    return new LocalTeacher(ref, model, tokenizer, chatTemplate, options);
  }

  async info(): Promise<TeacherInfo> {
    return { provider: 'local', model: this.name, canScore: true };
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
    for (const text of texts) {
      const scores = await scoreTokens(this.model, this.tokenizer.encode(text, { addSpecialTokens: true }), k);
      results.push(scores.ids.map((id, i) => this.tokenLogprob(id, scores.logprobs[i] ?? Number.NaN, scores.topK[i] ?? [])));
    }
    return results;
  }

  private async generateOne(request: GenerateRequest): Promise<Sample> {
    const promptIds = this.promptIds(request);
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

  /** A chat through the model's template when it has one; a bare prompt otherwise. */
  private promptIds(request: GenerateRequest): number[] {
    if (this.template) {
      const special = (id: number | null) => (id === null ? undefined : this.tokenizer.decode([id]));
      const text = this.template(requestMessages(request), {
        addGenerationPrompt: true,
        bosToken: special(this.tokenizer.bosId),
        eosToken: special(this.tokenizer.eosId),
      });
      return this.tokenizer.encode(text, { addSpecialTokens: false, parseSpecialTokens: true });
    }
    if (request.prompt === undefined || request.messages !== undefined) {
      throw new TeacherConfigError(`local teacher ${this.name}: the model has no chat template, so requests need a plain \`prompt\``);
    }
    const text = request.system === undefined ? request.prompt : `${request.system}\n\n${request.prompt}`;
    return this.tokenizer.encode(text, { addSpecialTokens: true });
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
