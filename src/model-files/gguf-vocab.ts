/**
 * A tokenizer.json as GGUF `tokenizer.ggml.*` metadata, one token per id up to the model's vocabulary size
 * (ids the tokenizer lacks become `[PAD<id>]`, type unused), added special tokens typed control and other
 * added tokens user-defined:
 * - byte-level BPE (`model = gpt2`), laid out as convert_hf_to_gguf.py's `_set_vocab_gpt2` / `get_vocab_base`
 *   do, merges as "a b" strings;
 * - SentencePiece BPE (`model = llama`: Llama 2, TinyLlama, Mistral, Gemma), a BPE with byte fallback over
 *   "▁"-escaped text, as `_set_vocab_sentencepiece` writes it from tokenizer.model: scores, `<0xXX>` pieces
 *   typed byte, the unknown piece typed unknown, `add_space_prefix` when the text gets a leading "▁". A
 *   tokenizer.json has no scores, only merges ranked as SentencePieceExtractor derived them from the scores;
 *   llama.cpp merges the adjacent pair whose concatenation scores highest, so each piece scores minus the
 *   rank of the first merge that makes it, which puts llama.cpp's merges in the tokenizer.json's order.
 * Either way the metadata is read back through the project's GGUF tokenizer (which models llama.cpp) and must
 * tokenize a probe text exactly as the tokenizer.json does.
 *
 * `tokenizer.ggml.pre` names the regex split llama.cpp applies before the merges. The converter recognizes a
 * tokenizer by hashing how it tokenizes a probe text; here each split llama.cpp knows is tried the same way,
 * through the project's GGUF tokenizer reader (which models llama.cpp's splits), until one tokenizes the
 * probe exactly as the tokenizer.json does. Without merges every byte is its own token whatever the split,
 * so such a tokenizer (the scratch models' byte-level one) gets `default`.
 */
import { ggufTokenizerFiles, KNOWN_GGUF_PRE_TOKENIZERS, tokenizerFromGguf } from '../tokenizer/gguf-tokenizer.ts';
import { tokenizerFromJson } from '../tokenizer/hf-tokenizer.ts';
import type { TokenizerConfigJson } from '../tokenizer/special-tokens.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { GgufModelError } from './gguf-model-config.ts';
import type { GgufValue } from '../formats/gguf/metadata.ts';

export interface GgufExportTokenizer {
  /** The tokenizer.json text. */
  json: string;
  /** tokenizer_config.json (special token names, add_bos_token, chat_template), when there is one. */
  config?: TokenizerConfigJson;
}

/** llama.cpp's llama_token_type. */
const TokenType = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

const SPACE_MARK = '\u2581'; // "▁"
const BYTE_PIECE = /^<0x[0-9A-Fa-f]{2}>$/;

/** Text that tells the splits apart: contractions, digit runs, blank runs, punctuation, scripts, emoji. */
const PROBE_TEXT =
  "Hello WORLD, it's 'LL be fine; I'M sure they'VE done, we'll see 1 12 123 1234 12345 3.14 x2y3z\n\n  \n\t\tindent \t mixed" +
  ' !!!??? ...--- ((nested)) a+b=c don\'t ' +
  'über naïve Ελληνικά русский 中文字符 日本語です 한국어 🦙🚀✅ end  ';

interface TokenizerJson {
  model?: {
    type?: string;
    vocab?: Record<string, number>;
    merges?: (string | [string, string])[];
    unk_token?: string | null;
    ignore_merges?: boolean;
    byte_fallback?: boolean;
  };
  added_tokens?: { id: number; content: string; special?: boolean }[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
}

type TokenizerKind = 'byte-level' | 'sentencepiece';

/** The `tokenizer.*` metadata for a model with `vocabSize` embedding rows; `source` names the tokenizer in errors. */
export function ggufTokenizerMetadata(tokenizer: GgufExportTokenizer, vocabSize: number, source = 'tokenizer.json'): [string, GgufValue][] {
  const { json, kind } = parseTokenizerJson(tokenizer.json, source);
  const original = tokenizerFromJson(tokenizer.json, tokenizer.config ?? {}, { tokenizerFile: source, configFile: source });
  const { tokens, types } = vocabulary(json, vocabSize, source);
  const merges = (json.model!.merges ?? []).map((merge) => (typeof merge === 'string' ? merge : merge.join(' ')));
  const record: Record<string, unknown> = {
    ...(kind === 'byte-level'
      ? { 'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.tokens': tokens, 'tokenizer.ggml.token_type': types, 'tokenizer.ggml.merges': merges }
      : sentencePieceVocabulary(json, tokens, types, merges)),
    ...specialTokens(original, json, tokens),
  };
  const chatTemplate = chatTemplateOf(tokenizer.config);
  if (chatTemplate !== null) record['tokenizer.chat_template'] = chatTemplate;
  if (kind === 'byte-level') record['tokenizer.ggml.pre'] = merges.length === 0 ? 'default' : matchingPreTokenizer(record, original, json, source);
  else checkSameTokens(record, original, source);
  return Object.entries(record).map(([key, value]) => [key, ggufValue(value, key)]);
}

function parseTokenizerJson(text: string, source: string): { json: TokenizerJson; kind: TokenizerKind } {
  let json: TokenizerJson;
  try {
    json = JSON.parse(text) as TokenizerJson;
  } catch (error) {
    throw new GgufModelError(source, 'INVALID_TOKENIZER', `invalid JSON (${(error as Error).message})`);
  }
  const byteLevel = JSON.stringify(json.pre_tokenizer ?? null).includes('"ByteLevel"');
  const sentencePiece = !byteLevel && json.model?.byte_fallback === true && JSON.stringify([json.normalizer, json.pre_tokenizer]).includes(SPACE_MARK);
  if (json.model?.type !== 'BPE' || !(byteLevel || sentencePiece) || typeof json.model.vocab !== 'object') {
    throw new GgufModelError(
      source,
      'UNSUPPORTED_TOKENIZER',
      `only BPE tokenizers can be written to GGUF: byte-level (a ByteLevel pre-tokenizer) or SentencePiece-style (byte_fallback, spaces as "${SPACE_MARK}"); ` +
        `this one has model.type ${JSON.stringify(json.model?.type)}, ${byteLevel ? 'a' : 'no'} ByteLevel pre-tokenizer and byte_fallback ${JSON.stringify(json.model?.byte_fallback ?? false)}`,
    );
  }
  return { json, kind: byteLevel ? 'byte-level' : 'sentencepiece' };
}

/** `tokenizer.ggml.*` of `model = llama`: scores from the merges' ranks, byte and unknown pieces typed, the space prefix. */
function sentencePieceVocabulary(json: TokenizerJson, tokens: string[], types: number[], merges: string[]): Record<string, unknown> {
  const firstRank = new Map<string, number>();
  merges.forEach((merge, rank) => {
    const joined = merge.replace(' ', '');
    if (!firstRank.has(joined)) firstRank.set(joined, rank);
  });
  const unknown = json.model!.unk_token;
  return {
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': tokens,
    // Pieces no merge makes (single characters, bytes, specials) never result from a merge: last in rank.
    'tokenizer.ggml.scores': tokens.map((token) => -(firstRank.get(token) ?? merges.length)),
    'tokenizer.ggml.token_type': types.map((type, id) => {
      if (tokens[id] === unknown) return TokenType.unknown;
      return type === TokenType.normal && BYTE_PIECE.test(tokens[id]) ? TokenType.byte : type;
    }),
    'tokenizer.ggml.add_space_prefix': prependsSpace(json),
  };
}

/** Whether text gets a leading "▁": a Prepend normalizer (Llama 2), or a Metaspace that prepends (newer files). */
function prependsSpace(json: TokenizerJson): boolean {
  const steps = JSON.stringify([json.normalizer, json.pre_tokenizer]);
  return steps.includes('"Prepend"') || /"Metaspace"[^}]*"prepend_scheme":"(always|first)"/.test(steps) || /"Metaspace"[^}]*"add_prefix_space":true/.test(steps);
}

/** Refuses metadata that llama.cpp would tokenize otherwise than the tokenizer.json (a normalizer it has no key for). */
function checkSameTokens(record: Record<string, unknown>, original: Tokenizer, source: string): void {
  const expected = original.encode(PROBE_TEXT);
  const ids = tokenizerFromGguf(record, { source }).encode(PROBE_TEXT);
  const at = ids.findIndex((id, i) => id !== expected[i]);
  if (at >= 0 || ids.length !== expected.length) {
    throw new GgufModelError(source, 'UNSUPPORTED_TOKENIZER', `as GGUF metadata this SentencePiece tokenizer would split text differently (token ${at < 0 ? ids.length : at} of a probe text): its normalizer or pre-tokenizer has no llama.cpp setting`);
  }
}

function vocabulary(json: TokenizerJson, vocabSize: number, source: string): { tokens: string[]; types: number[] } {
  const tokens: (string | undefined)[] = new Array(vocabSize).fill(undefined);
  const types: number[] = new Array(vocabSize).fill(TokenType.normal);
  const place = (id: number, content: string) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      const detail = `token ${JSON.stringify(content)} has id ${id}, but the model has ${vocabSize} embedding rows`;
      throw new GgufModelError(source, 'VOCAB_MISMATCH', detail);
    }
    tokens[id] = content;
  };
  for (const [content, id] of Object.entries(json.model!.vocab!)) place(id, content);
  for (const added of json.added_tokens ?? []) {
    place(added.id, added.content);
    types[added.id] = added.special ? TokenType.control : TokenType.userDefined;
  }
  return {
    tokens: tokens.map((token, id) => token ?? `[PAD${id}]`),
    types: types.map((type, id) => (tokens[id] === undefined ? TokenType.unused : type)),
  };
}

/** Special token ids as the tokenizer resolves them, and whether `encode` adds BOS/EOS. */
function specialTokens(original: Tokenizer, json: TokenizerJson, tokens: string[]): Record<string, unknown> {
  const unk = json.model!.unk_token ? tokens.indexOf(json.model!.unk_token) : -1;
  const wrapped = original.encode('', { addSpecialTokens: true });
  const addBos = original.bosId !== null && wrapped[0] === original.bosId;
  const addEos = original.eosId !== null && wrapped.length > (addBos ? 1 : 0) && wrapped.at(-1) === original.eosId;
  const ids: Record<string, unknown> = {
    'tokenizer.ggml.bos_token_id': original.bosId,
    'tokenizer.ggml.eos_token_id': original.eosId,
    'tokenizer.ggml.unknown_token_id': unk >= 0 ? unk : null,
    'tokenizer.ggml.padding_token_id': original.padId,
    'tokenizer.ggml.add_bos_token': addBos,
    'tokenizer.ggml.add_eos_token': addEos,
  };
  return Object.fromEntries(Object.entries(ids).filter(([, value]) => value !== null));
}

/** tokenizer_config.json's chat_template: a string, or named templates of which `default` counts. */
function chatTemplateOf(config: TokenizerConfigJson | undefined): string | null {
  const template = config?.chat_template;
  if (typeof template === 'string') return template;
  if (Array.isArray(template)) {
    const named = template.find((entry: { name?: string }) => entry?.name === 'default') as { template?: unknown } | undefined;
    if (typeof named?.template === 'string') return named.template;
  }
  return null;
}

function matchingPreTokenizer(record: Record<string, unknown>, original: Tokenizer, json: TokenizerJson, source: string): string {
  const expected = original.encode(PROBE_TEXT);
  const ignoreMerges = json.model!.ignore_merges ?? false;
  const candidates = distinctPreTokenizers(JSON.stringify(json.pre_tokenizer ?? null))
    .filter((candidate) => candidate.ignoreMerges === ignoreMerges)
    .map((candidate) => candidate.name);
  for (const pre of candidates) {
    const candidate = tokenizerFromGguf({ ...record, 'tokenizer.ggml.pre': pre }, { source });
    const ids = candidate.encode(PROBE_TEXT);
    if (ids.length === expected.length && ids.every((id, i) => id === expected[i])) return pre;
  }
  throw new GgufModelError(
    source,
    'UNSUPPORTED_TOKENIZER',
    `no tokenizer.ggml.pre that llama.cpp knows splits text the way this tokenizer does (tried ${candidates.join(', ')})`,
  );
}

/** The names convert_hf_to_gguf.py writes, preferred over their aliases in llama.cpp. */
const CONVERTER_NAMES = new Set(['llama-bpe', 'qwen2', 'smollm', 'gpt-2', 'dbrx', 'gpt-4o', 'tekken']);

interface PreTokenizerCandidate {
  name: string;
  /** A piece that is a whole vocabulary entry skips the merges (tokenizer.json's model.ignore_merges). */
  ignoreMerges: boolean;
  /** Its regexes appear in the tokenizer.json's own pre-tokenizer. */
  likely: boolean;
}

/**
 * One name per distinct split (llama.cpp gives several names the same one), the likely ones first, so that
 * usually only one is built and tried.
 */
function distinctPreTokenizers(originalPreTokenizer: string): PreTokenizerCandidate[] {
  const bySplit = new Map<string, PreTokenizerCandidate>();
  for (const name of KNOWN_GGUF_PRE_TOKENIZERS) {
    const { tokenizerJson } = ggufTokenizerFiles({
      'tokenizer.ggml.model': 'gpt2',
      'tokenizer.ggml.pre': name,
      'tokenizer.ggml.tokens': ['a'],
      'tokenizer.ggml.merges': [],
      'tokenizer.ggml.add_bos_token': false,
    });
    const { pre_tokenizer: split, model } = tokenizerJson as {
      pre_tokenizer: { pretokenizers: { pattern?: { Regex: string } }[] };
      model: { ignore_merges: boolean };
    };
    const signature = JSON.stringify([split, model]);
    const known = bySplit.get(signature);
    if (known && !(CONVERTER_NAMES.has(name) && !CONVERTER_NAMES.has(known.name))) continue;
    const regexes = split.pretokenizers.flatMap((step) => (step.pattern ? [JSON.stringify(step.pattern.Regex).slice(1, -1)] : []));
    const likely = regexes.every((regex) => originalPreTokenizer.includes(regex));
    bySplit.set(signature, { name, ignoreMerges: model.ignore_merges, likely });
  }
  const all = [...bySplit.values()];
  return [...all.filter((c) => c.likely), ...all.filter((c) => !c.likely)];
}

function ggufValue(value: unknown, key = ''): GgufValue {
  if (typeof value === 'string') return { type: 'STRING', value };
  if (typeof value === 'boolean') return { type: 'BOOL', value };
  if (typeof value === 'number') return { type: 'UINT32', value };
  const items = value as unknown[];
  if (key === 'tokenizer.ggml.scores') return { type: 'ARRAY', itemType: 'FLOAT32', value: items as number[] };
  if (typeof items[0] === 'number') return { type: 'ARRAY', itemType: 'INT32', value: items as number[] };
  return { type: 'ARRAY', itemType: 'STRING', value: items as string[] };
}
