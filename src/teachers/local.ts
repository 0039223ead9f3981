/**
 * A teacher loaded in this process (a Hugging Face folder, a GGUF file or an ollama: model, through the
 * project's own model). Unlike a server it sees the full next-token distribution at every position of any
 * sequence, so it can label existing text, and it gives token ids, not only token strings.
 */
import { promptEncoder, type PromptEncoder } from '../../datasets/prompt-ids.ts';
import { padIdOf } from '../../datasets/text-dataset.ts';
import type { CausalLM } from '../model/causal-lm.ts';
import { generateBatch } from '../model/generate.ts';
import { loadAdaptedModel } from '../model-files/adapted-model.ts';
import type { Projection } from '../model/layers.ts';
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
  /** The projections to run with (a LoRA run's adapter beside its base); the model's own by default. */
  project?: Projection;
  /** Disposes what the teacher holds (an adapter with its base); `model.dispose()` by default. */
  dispose?: () => void;
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

  /** A model, a PEFT adapter folder or a LoRA run (see loadAdaptedModel). */
  static async load(ref: string, options: LocalTeacherOptions = {}): Promise<LocalTeacher> {
    const loaded = await loadAdaptedModel(ref, { logger: options.logger });
    if (!loaded.tokenizer) {
      loaded.dispose();
      throw new TeacherConfigError(`local teacher ${ref}: the model has no tokenizer`);
    }
    return new LocalTeacher(ref, loaded.model, loaded.tokenizer, loaded.chatTemplate, { ...options, digest: await loaded.digest(), project: loaded.project, dispose: loaded.dispose });
  }

  async info(): Promise<TeacherInfo> {
    return { provider: 'local', model: this.name, digest: this.options.digest, canScore: true };
  }

  /** Requests that share max tokens and temperature are generated together, in one batch. */
  async generate(requests: GenerateRequest[]): Promise<Sample[]> {
    requests.forEach(validateGenerateRequest);
    const samples: Sample[] = [];
    for (let start = 0; start < requests.length; ) {
      const { maxTokens, temperature } = requests[start];
      let end = start + 1;
      while (end < requests.length && requests[end].maxTokens === maxTokens && requests[end].temperature === temperature) end++;
      samples.push(...(await this.generateGroup(requests.slice(start, end))));
      start = end;
    }
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
    const scores = await scoreTokens(this.model, [...ids], k, this.options.project);
    return scores.ids.map((id, i) => this.tokenLogprob(id, scores.logprobs[i] ?? Number.NaN, scores.topK[i] ?? []));
  }

  /**
   * Each row samples with its request's own seed, so an answer does not depend on the batch it is in
   * (a resumed generate stage batches differently). A row ends at EOS, a stop string or max tokens.
   */
  private async generateGroup(requests: GenerateRequest[]): Promise<Sample[]> {
    const decode = (ids: number[]) => this.tokenizer.decode(ids, { skipSpecialTokens: true });
    const tokens: TokenLogprob[][] = requests.map(() => []);
    // Every eos id the model names, and the tokenizer's (a model built in memory names none itself).
    const stopIds = new Set([...this.model.config.stopTokenIds, ...(this.tokenizer.eosId === null ? [] : [this.tokenizer.eosId])]);
    const outputs = await generateBatch(
      this.model,
      requests.map((request) => this.encodePrompt(request)),
      {
        maxTokens: requests[0].maxTokens,
        temperature: requests[0].temperature,
        topK: 0,
        topP: 1,
        seed: 0,
        seeds: requests.map((request) => request.seed ?? 0),
        project: this.options.project,
        stopIds: [...stopIds],
        padId: padIdOf(this.tokenizer),
        onToken: (row, id, logits) => {
          const logprobs = logSoftmax(logits);
          tokens[row].push(this.tokenLogprob(id, logprobs[id], topEntries(logprobs, requests[row].topLogprobs)));
        },
        shouldStop: (row, ids) => stopsAt(decode(ids), requests[row].stop),
      },
    );
    return outputs.map((ids, row) => {
      const stopped = stopIds.has(ids.at(-1)!) || stopsAt(decode(ids), requests[row].stop);
      return { text: decode(ids), tokens: tokens[row], finishReason: stopped ? 'stop' : 'length' };
    });
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
    if (this.options.dispose) this.options.dispose();
    else this.model.dispose();
  }
}

function stopsAt(text: string, stop: readonly string[] | undefined): boolean {
  return stop?.some((s) => text.includes(s)) ?? false;
}
