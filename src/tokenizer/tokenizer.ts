/** What the model, data pipeline and CLI need from a tokenizer, whatever its origin. */
export interface Tokenizer {
  /** Number of ids the tokenizer can produce (base vocabulary plus added/special tokens). */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  /**
   * Text to ids. Special tokens (BOS) are added only when asked, as the model's tokenizer config says.
   * Special-token strings inside `text` (say `<|im_end|>` in a training record) stay plain text unless
   * `parseSpecialTokens` is set, as it must be for text rendered from a chat template.
   */
  encode(text: string, options?: { addSpecialTokens?: boolean; parseSpecialTokens?: boolean }): number[];
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Id of a token given as its vocabulary string, or undefined. */
  idOf(token: string): number | undefined;
  /** The tokenizer.json text that reproduces this tokenizer, saved next to model weights. */
  toJSON(): string;
}
