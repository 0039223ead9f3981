/**
 * A `Tokenizer` over a Hugging Face tokenizer.json (+ optional tokenizer_config.json), run by the
 * maintained pure-JS port `@huggingface/tokenizers`.
 */
import { z } from 'zod';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Tokenizer as LibraryTokenizer } from '@huggingface/tokenizers';
import { SlmError } from '../util/errors.ts';
import type { Tokenizer } from './tokenizer.ts';
import {
  resolveSpecialIds,
  specialAffixes,
  type AddedTokenJson,
  type SpecialAffixes,
  type TokenizerConfigJson,
} from './special-tokens.ts';

/** A tokenizer file that is missing or malformed; the message starts with its path. */
export class TokenizerLoadError extends SlmError {
  constructor(message: string) {
    super(message, { code: 'ERR_TOKENIZER' });
  }
}

/** Where the JSON came from, for error messages. */
export interface TokenizerFiles {
  tokenizerFile: string;
  configFile: string;
}

interface TokenizerJson {
  model: unknown;
  added_tokens?: AddedTokenJson[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  post_processor?: unknown;
  decoder?: unknown;
}

/**
 * The parts of tokenizer.json the library reads without checking, so that a file of another structure is
 * refused naming the key instead of failing inside it ("merges.map is not a function").
 */
const VOCAB_MAP = z.record(z.string(), z.number(), 'expected an object of token -> id');
const TOKENIZER_MODEL = z.discriminatedUnion('type', [
  z.looseObject({
    type: z.literal('BPE'),
    vocab: VOCAB_MAP,
    merges: z.array(z.union([z.string(), z.tuple([z.string(), z.string()])]), 'expected a list of merges ("a b" strings or [a, b] pairs)'),
  }),
  z.looseObject({ type: z.literal('Unigram'), vocab: z.array(z.tuple([z.string(), z.number()]), 'expected a list of [piece, score] pairs') }),
  z.looseObject({ type: z.literal('WordPiece'), vocab: VOCAB_MAP }),
  z.looseObject({ type: z.literal('WordLevel'), vocab: VOCAB_MAP }),
], 'expected "type" BPE, Unigram, WordPiece or WordLevel');
const TOKENIZER_JSON = z.looseObject(
  {
    model: TOKENIZER_MODEL,
    added_tokens: z.array(z.looseObject({ id: z.number(), content: z.string() }), 'expected a list of {id, content}').optional().nullable(),
  },
  'expected an object with a "model" key',
);

const DEFAULT_FILES: TokenizerFiles = { tokenizerFile: 'tokenizer.json', configFile: 'tokenizer_config.json' };

/** `dirOrFile` is a model directory holding tokenizer.json, or the tokenizer.json itself. */
export async function loadTokenizer(dirOrFile: string): Promise<Tokenizer> {
  const tokenizerFile = (await isDirectory(dirOrFile)) ? join(dirOrFile, 'tokenizer.json') : dirOrFile;
  const configFile = join(dirname(tokenizerFile), 'tokenizer_config.json');
  const jsonText = await readText(tokenizerFile);
  if (jsonText === undefined) {
    throw new TokenizerLoadError(`${tokenizerFile}: not found (expected a Hugging Face tokenizer.json)`);
  }
  const configText = await readText(configFile);
  const config = configText === undefined ? {} : (parseJson(configText, configFile) as TokenizerConfigJson);
  return tokenizerFromJson(jsonText, config, { tokenizerFile, configFile });
}

/** Synchronous core of `loadTokenizer`, for JSON already in memory (the byte-level tokenizer uses it). */
export function tokenizerFromJson(
  jsonText: string,
  config: TokenizerConfigJson = {},
  files: TokenizerFiles = DEFAULT_FILES,
): Tokenizer {
  const json = parseJson(jsonText, files.tokenizerFile);
  const checked = TOKENIZER_JSON.safeParse(json);
  if (!checked.success) {
    const [issue] = checked.error.issues;
    const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new TokenizerLoadError(`${files.tokenizerFile}: ${where}${issue.message} (not the tokenizer.json layout of Hugging Face tokenizers)`);
  }
  return new HfTokenizer(jsonText, json as TokenizerJson, config, files);
}

class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  /** Splits special-token strings out of the text, as HF does by default; also decodes. */
  private readonly parsing: LibraryTokenizer;
  /** Same tokenizer without special added tokens, so `<|eos|>` typed in data stays text. */
  private readonly literal: LibraryTokenizer;
  private readonly affixes: SpecialAffixes;
  private readonly cleanUpSpaces: boolean;

  constructor(
    private readonly jsonText: string,
    json: TokenizerJson,
    config: TokenizerConfigJson,
    files: TokenizerFiles,
  ) {
    const full = withRequiredKeys(json);
    const addedTokens = full.added_tokens ?? [];
    this.parsing = buildLibraryTokenizer(full, config, files.tokenizerFile);
    this.literal = buildLibraryTokenizer(
      { ...full, added_tokens: addedTokens.filter((t) => !t.special), post_processor: null },
      config,
      files.tokenizerFile,
    );
    this.vocabSize = maxId(this.parsing) + 1;
    const ids = resolveSpecialIds(config, addedTokens, (t) => this.idOf(t), files.configFile);
    this.bosId = ids.bosId;
    this.eosId = ids.eosId;
    this.padId = ids.padId;
    this.affixes = specialAffixes(full.post_processor, config, ids);
    // The clean-up (" ." -> ".") is lossy; only a config that asks for it gets it.
    this.cleanUpSpaces = config.clean_up_tokenization_spaces ?? false;
  }

  encode(text: string, options: { addSpecialTokens?: boolean; parseSpecialTokens?: boolean } = {}): number[] {
    const library = options.parseSpecialTokens ? this.parsing : this.literal;
    const ids = library.encode(text, { add_special_tokens: false }).ids;
    return options.addSpecialTokens ? [...this.affixes.prefix, ...ids, ...this.affixes.suffix] : ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= this.vocabSize);
    if (bad !== undefined) throw new RangeError(`decode: id ${bad} is outside the vocabulary [0, ${this.vocabSize})`);
    return this.parsing.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  idOf(token: string): number | undefined {
    return this.parsing.token_to_id(token);
  }

  toJSON(): string {
    return this.jsonText;
  }
}

/** The library wants every component key present (null when absent) and an added_tokens array. */
function withRequiredKeys(json: TokenizerJson): Required<TokenizerJson> {
  return {
    model: json.model,
    added_tokens: json.added_tokens ?? [],
    normalizer: json.normalizer ?? null,
    pre_tokenizer: json.pre_tokenizer ?? null,
    post_processor: json.post_processor ?? null,
    decoder: json.decoder ?? null,
  };
}

function buildLibraryTokenizer(json: TokenizerJson, config: TokenizerConfigJson, file: string): LibraryTokenizer {
  try {
    return new LibraryTokenizer(json, config);
  } catch (error) {
    throw new TokenizerLoadError(`${file}: ${(error as Error).message}`);
  }
}

function maxId(library: LibraryTokenizer): number {
  let max = -1;
  for (const id of library.get_vocab(true).values()) max = Math.max(max, id);
  return max;
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new TokenizerLoadError(`${file}: invalid JSON (${(error as Error).message})`);
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
