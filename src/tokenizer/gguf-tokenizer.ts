/**
 * A `Tokenizer` from the `tokenizer.ggml.*` metadata of a GGUF file. Like the byte-level tokenizer, it writes
 * the equivalent Hugging Face tokenizer.json (+ tokenizer_config) and runs it through `tokenizerFromJson`, so a
 * GGUF model shares the project's one tokenizer code path and its tokenizer.json can be saved with exports.
 *
 * What the keys mean is what llama.cpp does with them (src/llama-vocab.cpp), since that is the code every GGUF
 * is made for:
 * - `gpt2`: byte-level BPE over `tokens` and `merges` ("a b"), split first by the regexes that
 *   `tokenizer.ggml.pre` names. A missing or unknown name gets GPT-2's regex, the common default (llama.cpp's
 *   own fallback is a degraded legacy split it warns about).
 * - `llama`: SentencePiece BPE over `tokens` and `scores` with byte fallback (`<0x41>`), a "▁" prepended to
 *   every run of text (`add_space_prefix`, default true) and spaces written as "▁".
 * Control and unknown tokens (token_type 3, 2) become special added tokens, parsed only on request;
 * user-defined ones (4) become non-special added tokens, always matched, as llama.cpp does.
 */
import { describeValue } from '../formats/format-error.ts';
import { TokenizerLoadError, tokenizerFromJson } from './hf-tokenizer.ts';
import type { AddedTokenJson, TokenizerConfigJson } from './special-tokens.ts';
import type { Tokenizer } from './tokenizer.ts';

/** Decoded GGUF key/values, as a Map or a plain object; arrays may be JS arrays or typed arrays. */
export type GgufMetadata = ReadonlyMap<string, unknown> | Readonly<Record<string, unknown>>;

export interface GgufTokenizer extends Tokenizer {
  /** `tokenizer.chat_template` (a Jinja template), or null when the file has none. */
  readonly chatTemplate: string | null;
}

/** The Hugging Face files equivalent to a GGUF's tokenizer metadata. */
export interface GgufTokenizerFiles {
  tokenizerJson: object;
  tokenizerConfig: TokenizerConfigJson;
}

export const SUPPORTED_GGUF_TOKENIZERS = ['gpt2', 'llama'] as const;

/** `source` (say the GGUF's path) starts error messages. */
export function tokenizerFromGguf(metadata: GgufMetadata, options: { source?: string } = {}): GgufTokenizer {
  const source = options.source ?? 'GGUF metadata';
  const { tokenizerJson, tokenizerConfig } = ggufTokenizerFiles(metadata, options);
  const files = { tokenizerFile: source, configFile: source };
  const tokenizer = tokenizerFromJson(JSON.stringify(tokenizerJson), tokenizerConfig, files);
  return Object.assign(tokenizer, { chatTemplate: (tokenizerConfig.chat_template as string | undefined) ?? null });
}

export function ggufTokenizerFiles(metadata: GgufMetadata, options: { source?: string } = {}): GgufTokenizerFiles {
  const read = new MetadataReader(metadata, options.source ?? 'GGUF metadata');
  const model = read.string('tokenizer.ggml.model');
  if (model !== 'gpt2' && model !== 'llama') {
    read.fail('tokenizer.ggml.model', `tokenizer model ${JSON.stringify(model)} is not supported (supported: ${SUPPORTED_GGUF_TOKENIZERS.join(', ')})`);
  }
  const vocab = readVocab(read);
  const flavour = model === 'gpt2' ? byteLevelFlavour(read) : sentencePieceFlavour(read, vocab);
  const special = readSpecialTokens(read, vocab, model, flavour.addBosDefault);
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(vocab),
    normalizer: flavour.normalizer,
    pre_tokenizer: flavour.preTokenizer,
    post_processor: templateProcessing(special),
    decoder: flavour.decoder,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: special.unk?.content ?? null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      ...flavour.modelOptions,
      vocab: Object.fromEntries(vocab.tokens.map((token, id) => [token, id])),
      merges: flavour.merges,
    },
  };
  return { tokenizerJson, tokenizerConfig: tokenizerConfig(read, special) };
}

/** llama.cpp's llama_token_type, one per token in `tokenizer.ggml.token_type`. */
const TokenType = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

interface Vocab {
  tokens: string[];
  types: number[];
}

function readVocab(read: MetadataReader): Vocab {
  const tokens = read.strings('tokenizer.ggml.tokens');
  const seen = new Map<string, number>();
  tokens.forEach((token, id) => {
    const first = seen.get(token);
    if (first !== undefined) {
      read.fail('tokenizer.ggml.tokens', `duplicate token ${JSON.stringify(token)} at ids ${first} and ${id}`);
    }
    seen.set(token, id);
  });
  const types = read.optionalNumbers('tokenizer.ggml.token_type', tokens.length) ?? tokens.map(() => TokenType.normal);
  return { tokens, types };
}

function addedTokens({ tokens, types }: Vocab): AddedTokenJson[] {
  const added: AddedTokenJson[] = [];
  types.slice(0, tokens.length).forEach((type, id) => {
    if (type !== TokenType.control && type !== TokenType.unknown && type !== TokenType.userDefined) return;
    const special = type !== TokenType.userDefined;
    added.push({ id, content: tokens[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special });
  });
  return added;
}

/** The parts of tokenizer.json that differ between the two GGUF tokenizer models. */
interface Flavour {
  normalizer: object | null;
  preTokenizer: object | null;
  decoder: object;
  modelOptions: { fuse_unk: boolean; byte_fallback: boolean; ignore_merges: boolean };
  merges: [string, string][];
  /** llama.cpp's add_bos when `tokenizer.ggml.add_bos_token` is absent. */
  addBosDefault: boolean;
}

// ---- gpt2: byte-level BPE -------------------------------------------------------------------------------

/** GPT-2's split, as the ByteLevel pre-tokenizer of Hugging Face tokenizers writes it. */
const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
/** Llama 3's tokenizer.json: case-insensitive contractions, digits in groups of at most 3. */
const LLAMA3_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Qwen2's tokenizer.json: Llama 3's split with single digits. */
const QWEN2_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** GPT-4o's tokenizer.json (Phi-4, Llama 4): case-aware words that keep their contraction. */
const GPT4O_REGEX =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Mistral's Tekken tokenizer.json. */
const TEKKEN_REGEX =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

interface PreTokenizerSpec {
  /** Applied in order, each splitting the pieces of the one before and keeping what it matched. */
  regexes: string[];
  /** A piece that is a whole vocabulary entry skips the merges (Llama 3's `ignore_merges`). */
  ignoreMerges: boolean;
  addBosDefault: boolean;
}

const GPT2_SPEC: PreTokenizerSpec = { regexes: [GPT2_REGEX], ignoreMerges: false, addBosDefault: false };

/** `tokenizer.ggml.pre` names grouped as llama-vocab.cpp groups them. */
const PRE_TOKENIZER_GROUPS: [names: string[], spec: PreTokenizerSpec][] = [
  [
    ['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2'],
    { regexes: [LLAMA3_REGEX], ignoreMerges: true, addBosDefault: true },
  ],
  [['dbrx', 'smaug-bpe'], { regexes: [LLAMA3_REGEX], ignoreMerges: false, addBosDefault: false }],
  [['qwen2', 'deepseek-r1-qwen', 'stablelm2', 'megrez'], { regexes: [QWEN2_REGEX], ignoreMerges: false, addBosDefault: false }],
  [
    ['smollm', 'starcoder', 'refact', 'command-r', 'codeshell', 'exaone', 'minerva-7b'],
    { regexes: ['\\p{N}', GPT2_REGEX], ignoreMerges: false, addBosDefault: false },
  ],
  [['gpt-4o', 'llama4'], { regexes: [GPT4O_REGEX], ignoreMerges: false, addBosDefault: false }],
  [['tekken'], { regexes: [TEKKEN_REGEX], ignoreMerges: true, addBosDefault: true }],
  [['gpt-2', 'gpt2', 'default', 'phi-2', 'mpt', 'olmo', 'jais'], GPT2_SPEC],
];

const PRE_TOKENIZERS = new Map(PRE_TOKENIZER_GROUPS.flatMap(([names, spec]) => names.map((name) => [name, spec] as const)));

/** The `tokenizer.ggml.pre` names with their own split; any other name gets GPT-2's. */
export const KNOWN_GGUF_PRE_TOKENIZERS: readonly string[] = [...PRE_TOKENIZERS.keys()];

function byteLevelFlavour(read: MetadataReader): Flavour {
  const pre = read.optionalString('tokenizer.ggml.pre');
  const spec = (pre !== undefined && PRE_TOKENIZERS.get(pre)) || GPT2_SPEC;
  const splits = spec.regexes.map((regex) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false }));
  const byteLevel = { add_prefix_space: false, trim_offsets: true };
  return {
    normalizer: null,
    // The regexes did the splitting; ByteLevel only maps bytes to GPT-2's printable alphabet.
    preTokenizer: { type: 'Sequence', pretokenizers: [...splits, { type: 'ByteLevel', ...byteLevel, use_regex: false }] },
    decoder: { type: 'ByteLevel', ...byteLevel, use_regex: true },
    modelOptions: { fuse_unk: false, byte_fallback: false, ignore_merges: spec.ignoreMerges },
    merges: read.strings('tokenizer.ggml.merges').map((merge, i) => splitMerge(read, merge, i)),
    addBosDefault: spec.addBosDefault,
  };
}

/** "a b" -> ["a", "b"], cut at the first space after the first character, as llama.cpp reads merges. */
function splitMerge(read: MetadataReader, merge: string, index: number): [string, string] {
  const cut = merge.indexOf(' ', 1);
  if (cut < 0) read.fail(`tokenizer.ggml.merges[${index}]`, `expected two tokens separated by a space, got ${JSON.stringify(merge)}`);
  return [merge.slice(0, cut), merge.slice(cut + 1)];
}

// ---- llama: SentencePiece BPE ---------------------------------------------------------------------------

const SPACE_MARK = '\u2581'; // "▁"

function sentencePieceFlavour(read: MetadataReader, vocab: Vocab): Flavour {
  const scores = read.numbers('tokenizer.ggml.scores', vocab.tokens.length);
  const addSpacePrefix = read.optionalBool('tokenizer.ggml.add_space_prefix') ?? true;
  const escapeSpaces = { type: 'Replace', pattern: { String: ' ' }, content: SPACE_MARK };
  const unescapeSpaces = { type: 'Replace', pattern: { String: SPACE_MARK }, content: ' ' };
  return {
    // A normalizer rather than the Metaspace pre-tokenizer: it runs on every stretch of text between added
    // tokens and prepends even to text that starts with a space, as llama.cpp does (" hi" -> "▁▁hi").
    normalizer: addSpacePrefix
      ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: SPACE_MARK }, escapeSpaces] }
      : escapeSpaces,
    preTokenizer: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        unescapeSpaces,
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    modelOptions: { fuse_unk: true, byte_fallback: true, ignore_merges: false },
    merges: mergesFromScores(vocab, scores),
    addBosDefault: true,
  };
}

/**
 * SentencePiece BPE as ranked merges, the way transformers' SentencePieceExtractor writes Llama's tokenizer.json:
 * every split of a normal piece into two vocabulary pieces is a merge, ranked by the merged piece's score,
 * highest first; equal scores keep vocabulary order. llama.cpp merges the adjacent pair whose concatenation
 * scores highest, which is the same order (it breaks ties between different pieces of equal score by position
 * instead; SentencePiece vocabularies give pieces distinct scores).
 */
function mergesFromScores({ tokens, types }: Vocab, scores: number[]): [string, string][] {
  const ids = new Map(tokens.map((token, id) => [token, id]));
  const merges: { pair: [string, string]; key: number[] }[] = [];
  tokens.forEach((piece, id) => {
    if (types[id] !== TokenType.normal) return;
    const chars = Array.from(piece);
    for (let cut = 1; cut < chars.length; cut++) {
      const left = chars.slice(0, cut).join('');
      const right = chars.slice(cut).join('');
      const leftId = ids.get(left);
      const rightId = ids.get(right);
      if (leftId !== undefined && rightId !== undefined) merges.push({ pair: [left, right], key: [-scores[id], id, leftId, rightId] });
    }
  });
  merges.sort((a, b) => compareKeys(a.key, b.key));
  return merges.map((merge) => merge.pair);
}

function compareKeys(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

// ---- special tokens -------------------------------------------------------------------------------------

interface SpecialToken {
  id: number;
  content: string;
}

interface SpecialTokens {
  bos: SpecialToken | null;
  eos: SpecialToken | null;
  pad: SpecialToken | null;
  unk: SpecialToken | null;
  addBos: boolean;
  addEos: boolean;
}

/** SentencePiece's conventional ids, which llama.cpp assumes for `llama` when the keys are absent. */
const SENTENCEPIECE_DEFAULT_IDS = { bos: 1, eos: 2, unk: 0 };

function readSpecialTokens(read: MetadataReader, { tokens }: Vocab, model: string, addBosDefault: boolean): SpecialTokens {
  const defaults: Partial<Record<'bos' | 'eos' | 'unk', number>> = model === 'llama' ? SENTENCEPIECE_DEFAULT_IDS : {};
  const token = (key: string, fallback: number | undefined): SpecialToken | null => {
    const id = read.optionalTokenId(key, tokens.length) ?? (fallback !== undefined && fallback < tokens.length ? fallback : undefined);
    return id === undefined ? null : { id, content: tokens[id] };
  };
  const special: SpecialTokens = {
    bos: token('tokenizer.ggml.bos_token_id', defaults.bos),
    eos: token('tokenizer.ggml.eos_token_id', defaults.eos),
    pad: token('tokenizer.ggml.padding_token_id', undefined),
    unk: token('tokenizer.ggml.unknown_token_id', defaults.unk),
    addBos: read.optionalBool('tokenizer.ggml.add_bos_token') ?? addBosDefault,
    addEos: read.optionalBool('tokenizer.ggml.add_eos_token') ?? false,
  };
  if (special.addBos && !special.bos) read.fail('tokenizer.ggml.add_bos_token', 'is true, but tokenizer.ggml.bos_token_id is not set');
  if (special.addEos && !special.eos) read.fail('tokenizer.ggml.add_eos_token', 'is true, but tokenizer.ggml.eos_token_id is not set');
  return special;
}

/** BOS/EOS around a sequence as `add_bos_token`/`add_eos_token` say, so tokenizer.json alone adds them too. */
function templateProcessing({ bos, eos, addBos, addEos }: SpecialTokens): object | null {
  const around = [addBos ? bos : null, addEos ? eos : null];
  if (around.every((t) => t === null)) return null;
  const item = (t: SpecialToken | null, typeId: number) => (t ? [{ SpecialToken: { id: t.content, type_id: typeId } }] : []);
  const sequence = (id: string, typeId: number) => [
    ...item(around[0], typeId),
    { Sequence: { id, type_id: typeId } },
    ...item(around[1], typeId),
  ];
  const used = around.filter((t): t is SpecialToken => t !== null);
  return {
    type: 'TemplateProcessing',
    single: sequence('A', 0),
    pair: [...sequence('A', 0), ...sequence('B', 1)],
    special_tokens: Object.fromEntries(used.map((t) => [t.content, { id: t.content, ids: [t.id], tokens: [t.content] }])),
  };
}

function tokenizerConfig(read: MetadataReader, special: SpecialTokens): TokenizerConfigJson {
  const chatTemplate = read.optionalString('tokenizer.chat_template');
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: special.bos?.content ?? null,
    eos_token: special.eos?.content ?? null,
    pad_token: special.pad?.content ?? null,
    unk_token: special.unk?.content ?? null,
    add_bos_token: special.addBos,
    add_eos_token: special.addEos,
    // The clean-up (" ." -> ".") is lossy, and decode should invert encode.
    clean_up_tokenization_spaces: false,
    ...(chatTemplate === undefined ? {} : { chat_template: chatTemplate }),
  };
}

// ---- reading decoded GGUF values ------------------------------------------------------------------------

/** Typed access to the metadata; every failure names the source and the key. */
class MetadataReader {
  constructor(
    private readonly metadata: GgufMetadata,
    private readonly source: string,
  ) {}

  fail(key: string, detail: string): never {
    throw new TokenizerLoadError(`${this.source}: ${key}: ${detail}`);
  }

  string(key: string): string {
    return this.optionalString(key) ?? this.fail(key, 'missing (expected a string)');
  }

  optionalString(key: string): string | undefined {
    const value = this.get(key);
    if (value === undefined || typeof value === 'string') return value;
    return this.fail(key, `expected a string, got ${describeValue(value)}`);
  }

  optionalBool(key: string): boolean | undefined {
    const value = this.get(key);
    if (value === undefined || typeof value === 'boolean') return value;
    return this.fail(key, `expected a boolean, got ${describeValue(value)}`);
  }

  optionalTokenId(key: string, vocabSize: number): number | undefined {
    const value = this.get(key);
    if (value === undefined) return undefined;
    const id = typeof value === 'bigint' ? Number(value) : value;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabSize) {
      return this.fail(key, `expected a token id in [0, ${vocabSize}), got ${describeValue(String(value))}`);
    }
    return id;
  }

  strings(key: string): string[] {
    const values = this.list(key) ?? this.fail(key, 'missing (expected an array of strings)');
    const bad = values.findIndex((v) => typeof v !== 'string');
    if (bad >= 0) this.fail(`${key}[${bad}]`, `expected a string, got ${describeValue(values[bad])}`);
    return values as string[];
  }

  numbers(key: string, minLength: number): number[] {
    return this.optionalNumbers(key, minLength) ?? this.fail(key, `missing (expected ${minLength} numbers, one per token)`);
  }

  /** At least `minLength` entries, one per token, as llama.cpp requires. */
  optionalNumbers(key: string, minLength: number): number[] | undefined {
    const values = this.list(key);
    if (values === undefined) return undefined;
    if (values.length < minLength) this.fail(key, `has ${values.length} entries, expected one per token (${minLength})`);
    const numbers = values.map((v) => (typeof v === 'bigint' ? Number(v) : v));
    const bad = numbers.findIndex((v) => typeof v !== 'number' || Number.isNaN(v));
    if (bad >= 0) this.fail(`${key}[${bad}]`, `expected a number, got ${describeValue(String(values[bad]))}`);
    return numbers as number[];
  }

  private list(key: string): unknown[] | undefined {
    const value = this.get(key);
    if (value === undefined) return undefined;
    if (Array.isArray(value)) return value;
    if (ArrayBuffer.isView(value) && 'length' in value) return Array.from(value as unknown as ArrayLike<unknown>);
    return this.fail(key, `expected an array, got ${describeValue(value)}`);
  }

  private get(key: string): unknown {
    if (this.metadata instanceof Map) return this.metadata.get(key);
    const record = this.metadata as Readonly<Record<string, unknown>>;
    return Object.hasOwn(record, key) ? record[key] : undefined;
  }
}
