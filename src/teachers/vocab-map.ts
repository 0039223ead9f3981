/**
 * Maps a teacher's tokens onto the student's vocabulary, so that top-k soft labels can be stored as
 * student ids. Servers send each token as its decoded text (and, OpenAI-style, its UTF-8 bytes); the
 * student's vocabulary stores tokens in its own alphabet, so the bytes are rewritten into it:
 *
 *   byte-level BPE (GPT-2, Llama 3, Qwen2, our scratch tokenizer)  " the" -> "Ġthe"
 *   SentencePiece (Metaspace, byte fallback)                        " the" -> "▁the", byte 0xF0 -> "<0xF0>"
 *   anything else                                                   the text itself
 *
 * A teacher token the student has no single token for is unmapped: soft labels then only make sense
 * when nearly every token maps (see `vocabularyAgreement`).
 */
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { bytesToUnicode } from '../tokenizer/byte-level.ts';
import type { TokenLogprob, TopLogprob } from './teacher.ts';

export type VocabularyStyle = 'byte-level' | 'sentencepiece' | 'plain';

export interface TeacherVocabMapOptions {
  /** The teacher uses the student's tokenizer (the local provider): trust `entry.id` when it is given. */
  sharedTokenizer?: boolean;
}

/** The soft-label block of one sample, row-major [T, k], as `ExampleRow` stores it. */
export interface MappedSample {
  /** Student id of each sampled token; -1 at the positions listed in `unmappedSampled`. */
  ids: Int32Array; // [T]
  sampledLogprobs: Float32Array; // [T]
  topIds: Int32Array; // [T, k], padded with 0
  topLogprobs: Float32Array; // [T, k], padded with -Infinity (zero probability)
  k: number;
  /** Alternatives dropped because the student has no token for them. */
  unmapped: number;
  /** Positions whose sampled token does not map: the sample cannot be stored as-is. */
  unmappedSampled: number[];
}

export interface VocabularyAgreement {
  /** Fraction of teacher tokens (sampled and alternatives) that map to a student id. */
  mappedFraction: number;
  checked: number;
  compatible: boolean;
  message: string;
}

export const DEFAULT_AGREEMENT_THRESHOLD = 0.99;

const SENTENCEPIECE_SPACE = '▁';
const REPLACEMENT_CHARACTER = '\uFFFD';

export class TeacherVocabMap {
  private readonly byteAlphabet = bytesToUnicode();
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly style: VocabularyStyle,
    private readonly spaceSymbol: string,
    /** Added (special) tokens are stored as plain text whatever the vocabulary's alphabet. */
    private readonly addedTokens: ReadonlySet<string>,
    private readonly options: TeacherVocabMapOptions,
  ) {}

  static forStudent(tokenizer: Tokenizer, options: TeacherVocabMapOptions = {}): TeacherVocabMap {
    const json = JSON.parse(tokenizer.toJSON()) as unknown;
    const { style, spaceSymbol } = detectVocabularyStyle(json);
    return new TeacherVocabMap(tokenizer, style, spaceSymbol, addedTokenContents(json), options);
  }

  /** The student id standing for the teacher token, or undefined when it has no single one. */
  idOf(entry: TopLogprob): number | undefined {
    if (this.options.sharedTokenizer && entry.id !== undefined) {
      return Number.isInteger(entry.id) && entry.id >= 0 && entry.id < this.tokenizer.vocabSize ? entry.id : undefined;
    }
    if (this.addedTokens.has(entry.token)) return this.tokenizer.idOf(entry.token);
    const bytes = tokenBytes(entry);
    return bytes === undefined ? undefined : this.lookupBytes(bytes);
  }

  /** The [T, k] soft labels of one sample; `k` defaults to the longest top list in it. */
  mapSample(tokens: readonly TokenLogprob[], k = Math.max(0, ...tokens.map((t) => t.top.length))): MappedSample {
    const T = tokens.length;
    const ids = new Int32Array(T);
    const sampledLogprobs = new Float32Array(T);
    const topIds = new Int32Array(T * k); // [T, k]
    const topLogprobs = new Float32Array(T * k).fill(-Infinity); // [T, k]
    const unmappedSampled: number[] = [];
    let unmapped = 0;
    tokens.forEach((token, t) => {
      const id = this.idOf(token);
      if (id === undefined) unmappedSampled.push(t);
      ids[t] = id ?? -1;
      sampledLogprobs[t] = token.logprob;
      const row = this.mapAlternatives(token.top);
      unmapped += row.unmapped;
      row.entries.slice(0, k).forEach((entry, j) => {
        topIds[t * k + j] = entry.id;
        topLogprobs[t * k + j] = entry.logprob;
      });
    });
    return { ids, sampledLogprobs, topIds, topLogprobs, k, unmapped, unmappedSampled };
  }

  /** Whether soft labels from this teacher are usable, judged on a few of its samples. */
  vocabularyAgreement(
    samples: readonly (readonly TokenLogprob[])[],
    threshold = DEFAULT_AGREEMENT_THRESHOLD,
  ): VocabularyAgreement {
    const entries = samples.flatMap((tokens) => tokens.flatMap((token) => [token, ...token.top]));
    const mapped = entries.filter((entry) => this.idOf(entry) !== undefined).length;
    const mappedFraction = entries.length === 0 ? 0 : mapped / entries.length;
    const compatible = entries.length > 0 && mappedFraction >= threshold;
    return { mappedFraction, checked: entries.length, compatible, message: agreementMessage(mappedFraction, entries.length, threshold, compatible) };
  }

  /** Mapped alternatives, best first; teacher tokens that land on the same student id are summed. */
  private mapAlternatives(top: readonly TopLogprob[]): { entries: { id: number; logprob: number }[]; unmapped: number } {
    const byId = new Map<number, number>();
    let unmapped = 0;
    for (const entry of top) {
      const id = this.idOf(entry);
      if (id === undefined) {
        unmapped++;
        continue;
      }
      const previous = byId.get(id);
      byId.set(id, previous === undefined ? entry.logprob : logAddExp(previous, entry.logprob));
    }
    const entries = [...byId].map(([id, logprob]) => ({ id, logprob })).sort((a, b) => b.logprob - a.logprob);
    return { entries, unmapped };
  }

  private lookupBytes(bytes: readonly number[]): number | undefined {
    switch (this.style) {
      case 'byte-level':
        return this.tokenizer.idOf(bytes.map((b) => this.byteAlphabet[b]).join(''));
      case 'sentencepiece':
        return this.lookupSentencePiece(bytes);
      case 'plain': {
        const text = this.decodeUtf8(bytes);
        return text === undefined ? undefined : this.tokenizer.idOf(text);
      }
    }
  }

  private lookupSentencePiece(bytes: readonly number[]): number | undefined {
    const text = this.decodeUtf8(bytes);
    const piece = text === undefined ? undefined : this.tokenizer.idOf(text.replaceAll(' ', this.spaceSymbol));
    if (piece !== undefined || bytes.length !== 1) return piece;
    return this.tokenizer.idOf(byteFallbackToken(bytes[0] as number));
  }

  private decodeUtf8(bytes: readonly number[]): string | undefined {
    try {
      return this.utf8.decode(Uint8Array.from(bytes));
    } catch {
      return undefined;
    }
  }
}

/** The byte-fallback token SentencePiece vocabularies hold for a single byte, e.g. `<0xF0>`. */
export function byteFallbackToken(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
}

/** Reads the vocabulary's alphabet from a tokenizer.json document (its model and pipeline components). */
export function detectVocabularyStyle(json: unknown): { style: VocabularyStyle; spaceSymbol: string } {
  const doc = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  const components = [doc.normalizer, doc.pre_tokenizer, doc.decoder].flatMap(componentNodes);
  if (components.some((node) => node.type === 'ByteLevel')) return { style: 'byte-level', spaceSymbol: ' ' };
  const metaspace = components.find((node) => node.type === 'Metaspace');
  const replacement = typeof metaspace?.replacement === 'string' ? metaspace.replacement : SENTENCEPIECE_SPACE;
  const model = (typeof doc.model === 'object' && doc.model !== null ? doc.model : {}) as Record<string, unknown>;
  const sentencePiece =
    metaspace !== undefined ||
    model.byte_fallback === true ||
    model.type === 'Unigram' ||
    components.some((node) => node.type === 'Replace' && JSON.stringify(node).includes(SENTENCEPIECE_SPACE));
  return sentencePiece ? { style: 'sentencepiece', spaceSymbol: replacement } : { style: 'plain', spaceSymbol: ' ' };
}

function addedTokenContents(json: unknown): Set<string> {
  const added = (json as { added_tokens?: unknown } | null)?.added_tokens;
  if (!Array.isArray(added)) return new Set();
  return new Set(added.map((token: { content?: unknown }) => token.content).filter((c): c is string => typeof c === 'string'));
}

/** A component and, for `Sequence` components, everything nested in it. */
function componentNodes(component: unknown): Record<string, unknown>[] {
  if (typeof component !== 'object' || component === null) return [];
  const node = component as Record<string, unknown>;
  const nested = [node.normalizers, node.pretokenizers, node.decoders].flatMap((list) =>
    Array.isArray(list) ? list.flatMap(componentNodes) : [],
  );
  return [node, ...nested];
}

/**
 * The token's UTF-8 bytes. Without `bytes`, a text holding U+FFFD is a part of a character the server
 * could not decode: its bytes are lost, and mapping "�" itself would be wrong.
 */
function tokenBytes(entry: TopLogprob): number[] | undefined {
  if (entry.bytes !== undefined) return entry.bytes;
  if (entry.token.includes(REPLACEMENT_CHARACTER)) return undefined;
  return [...new TextEncoder().encode(entry.token)];
}

function logAddExp(a: number, b: number): number {
  const max = Math.max(a, b);
  return max === -Infinity ? -Infinity : max + Math.log(Math.exp(a - max) + Math.exp(b - max));
}

function agreementMessage(fraction: number, checked: number, threshold: number, compatible: boolean): string {
  const percent = (x: number) => `${(100 * x).toFixed(2)}%`;
  if (checked === 0) {
    return 'vocabulary agreement: no teacher tokens to check; soft labels are off, use sequence-level distillation (CE on the teacher text)';
  }
  if (compatible) {
    return `vocabulary agreement: ${percent(fraction)} of ${checked} teacher tokens map to student ids (threshold ${percent(threshold)}); top-k soft labels are usable`;
  }
  return (
    `vocabulary agreement: only ${percent(fraction)} of ${checked} teacher tokens map to student ids ` +
    `(threshold ${percent(threshold)}): teacher and student vocabularies differ, so top-k soft labels would ` +
    'put the teacher probability on the wrong tokens. Falling back to sequence-level distillation: ' +
    "train on the teacher's text with cross-entropy (set k = 0)"
  );
}
