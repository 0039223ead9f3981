/** Where a value sits in the recipe: `['train', 'betas', 1]` is written `train.betas[1]`. */
export type KeyPath = readonly (string | number)[];

export function formatKeyPath(keyPath: KeyPath): string {
  return keyPath.map((key, i) => (typeof key === 'number' ? `[${key}]` : i === 0 ? key : `.${key}`)).join('');
}

/** The value at `keyPath` in plain parsed data, or undefined when any step is missing. */
export function valueAt(data: unknown, keyPath: KeyPath): unknown {
  let value = data;
  for (const key of keyPath) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string | number, unknown>)[key];
  }
  return value;
}
