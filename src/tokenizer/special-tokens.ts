/**
 * Which ids play the bos/eos/pad roles, and which ids `encode(..., { addSpecialTokens: true })` wraps text
 * with, read from a tokenizer.json and its optional tokenizer_config.json.
 */
import { SlmError } from '../util/errors.ts';

/** The part of tokenizer_config.json this project reads; a special token is a string or an AddedToken dict. */
export interface TokenizerConfigJson {
  bos_token?: TokenSpec | null;
  eos_token?: TokenSpec | null;
  pad_token?: TokenSpec | null;
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  clean_up_tokenization_spaces?: boolean;
  [key: string]: unknown;
}

type TokenSpec = string | { content: string };

export interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
  [key: string]: unknown;
}

export interface SpecialIds {
  bosId: number | null;
  eosId: number | null;
  padId: number | null;
}

export interface SpecialAffixes {
  prefix: number[];
  suffix: number[];
}

type Role = 'bos' | 'eos' | 'pad';

/** Names tried, in order, among the added tokens when tokenizer_config.json does not name the role. */
const FALLBACK_NAMES: Record<Role, readonly string[]> = {
  bos: ['<s>', '<|begin_of_text|>', '<|bos|>'],
  eos: ['</s>', '<|end_of_text|>', '<|endoftext|>', '<|im_end|>', '<|eos|>'],
  pad: ['<pad>', '<|pad|>'],
};

/** tokenizer_config.json names a special token the vocabulary lacks; the message starts with its path. */
export class SpecialTokenError extends SlmError {
  constructor(message: string) {
    super(message, { code: 'ERR_TOKENIZER' });
  }
}

/**
 * A role named in the config wins (an explicit `null` means the model has none, as Qwen2 says of BOS);
 * a key absent from the config falls back to well-known added-token names.
 */
export function resolveSpecialIds(
  config: TokenizerConfigJson,
  addedTokens: readonly AddedTokenJson[],
  idOf: (token: string) => number | undefined,
  configFile: string,
): SpecialIds {
  const resolve = (role: Role): number | null => {
    const key = `${role}_token` as const;
    if (key in config) return configuredId(config[key], key, idOf, configFile);
    const added = FALLBACK_NAMES[role].map((name) => addedTokens.find((t) => t.content === name));
    return added.find((t) => t !== undefined)?.id ?? null;
  };
  return { bosId: resolve('bos'), eosId: resolve('eos'), padId: resolve('pad') };
}

function configuredId(
  spec: TokenSpec | null | undefined,
  key: string,
  idOf: (token: string) => number | undefined,
  configFile: string,
): number | null {
  if (spec === null || spec === undefined) return null;
  const content = typeof spec === 'string' ? spec : spec.content;
  const id = idOf(content);
  if (id === undefined) {
    throw new SpecialTokenError(`${configFile}: ${key} ${JSON.stringify(content)} is not in the tokenizer's vocabulary`);
  }
  return id;
}

/**
 * The ids the tokenizer.json post-processor puts around a single sequence (TemplateProcessing, or
 * Bert/Roberta cls ... sep), then `add_bos_token` / `add_eos_token` from the config, which override the
 * template the way transformers' Llama/Gemma tokenizers rebuild their post-processor from those flags.
 */
export function specialAffixes(
  postProcessor: unknown,
  config: TokenizerConfigJson,
  ids: SpecialIds,
): SpecialAffixes {
  const affixes = postProcessorAffixes(postProcessor);
  return {
    prefix: applyFlag(affixes.prefix, ids.bosId, config.add_bos_token, 'start'),
    suffix: applyFlag(affixes.suffix, ids.eosId, config.add_eos_token, 'end'),
  };
}

function applyFlag(ids: number[], id: number | null, flag: boolean | undefined, side: 'start' | 'end'): number[] {
  if (flag === undefined || id === null) return ids;
  const without = ids.filter((x) => x !== id);
  if (!flag) return without;
  return side === 'start' ? [id, ...without] : [...without, id];
}

interface TemplateItem {
  SpecialToken?: { id: string };
  Sequence?: { id: string };
}

interface PostProcessorJson {
  type?: string;
  single?: TemplateItem[];
  special_tokens?: Record<string, { ids: number[] }>;
  processors?: PostProcessorJson[];
  cls?: [string, number];
  sep?: [string, number];
}

function postProcessorAffixes(json: unknown): SpecialAffixes {
  const processor = (json ?? {}) as PostProcessorJson;
  switch (processor.type) {
    case 'TemplateProcessing':
      return templateAffixes(processor);
    case 'BertProcessing':
    case 'RobertaProcessing':
      return { prefix: processor.cls ? [processor.cls[1]] : [], suffix: processor.sep ? [processor.sep[1]] : [] };
    case 'Sequence': {
      const parts = (processor.processors ?? []).map(postProcessorAffixes);
      return { prefix: parts.flatMap((p) => p.prefix), suffix: parts.flatMap((p) => p.suffix) };
    }
    default:
      return { prefix: [], suffix: [] };
  }
}

function templateAffixes(processor: PostProcessorJson): SpecialAffixes {
  const affixes: SpecialAffixes = { prefix: [], suffix: [] };
  let seenSequence = false;
  for (const item of processor.single ?? []) {
    if (item.Sequence) seenSequence = true;
    if (!item.SpecialToken) continue;
    const ids = processor.special_tokens?.[item.SpecialToken.id]?.ids ?? [];
    (seenSequence ? affixes.suffix : affixes.prefix).push(...ids);
  }
  return affixes;
}
