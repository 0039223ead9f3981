/** A problem with dataset input; the message starts with `file:line:` (or `file:`) and says what was expected. */
export class DatasetError extends Error {
  override name = 'DatasetError';
}
