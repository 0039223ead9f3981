/**
 * Command-line overrides of a recipe, `train.lr=1e-4 student.rank=32`: each sets one key path to a YAML
 * value before the recipe is validated, so an override is checked exactly as the file is, and a problem it
 * causes is reported against the override rather than a line of the file.
 */
import { parse } from 'yaml';
import { SlmError } from '../util/errors.ts';
import type { KeyPath } from './key-path.ts';

export interface RecipeOverride {
  /** As written: `train.lr=1e-4`. */
  text: string;
  keyPath: KeyPath;
  value: unknown;
}

const OVERRIDE = /^([A-Za-z_][\w-]*(?:\.(?:[A-Za-z_][\w-]*|\d+))*)=(.*)$/s;

/** `a.b.0.c=value`: dotted keys (a number indexes a list), then a YAML value (`1e-4`, `true`, `[a, b]`, text). */
export function parseOverride(text: string): RecipeOverride {
  const match = OVERRIDE.exec(text);
  if (!match) {
    throw new SlmError(`override ${JSON.stringify(text)}: expected key.path=value, such as train.lr=1e-4 or student.rank=32`, { code: 'ERR_RECIPE_OVERRIDE' });
  }
  const [, path, source] = match;
  let value: unknown;
  try {
    value = parse(source);
  } catch (error) {
    throw new SlmError(`override ${text}: the value is not valid YAML (${(error as Error).message.split('\n')[0]})`, { code: 'ERR_RECIPE_OVERRIDE' });
  }
  const keyPath = path.split('.').map((key) => (/^\d+$/.test(key) ? Number(key) : key));
  return { text, keyPath, value };
}

/**
 * The recipe's data with the overrides applied in order, the data itself untouched: maps on the way are
 * made where missing; a path through a value that is not a map (or a list, for an index) is refused.
 */
export function applyOverrides(data: unknown, overrides: readonly RecipeOverride[]): unknown {
  return overrides.reduce((current, override) => setIn(current, override.keyPath, override.value, override), data);
}

function setIn(node: unknown, keyPath: KeyPath, value: unknown, override: RecipeOverride): unknown {
  if (keyPath.length === 0) return value;
  const [key, ...rest] = keyPath;
  if (typeof key === 'number') {
    if (!Array.isArray(node) || key >= node.length) {
      throw new SlmError(`override ${override.text}: there is no item ${key} to set (${describe(node)})`, { code: 'ERR_RECIPE_OVERRIDE' });
    }
    const copy = [...node];
    copy[key] = setIn(node[key], rest, value, override);
    return copy;
  }
  if (node !== undefined && node !== null && (typeof node !== 'object' || Array.isArray(node))) {
    throw new SlmError(`override ${override.text}: cannot set ${String(key)} inside ${describe(node)}`, { code: 'ERR_RECIPE_OVERRIDE' });
  }
  const map = (node ?? {}) as Record<string, unknown>;
  return { ...map, [key]: setIn(map[key], rest, value, override) };
}

function describe(node: unknown): string {
  if (Array.isArray(node)) return `a list of ${node.length}`;
  if (node === undefined || node === null) return 'nothing';
  return typeof node === 'object' ? 'a map' : `the value ${JSON.stringify(node)}`;
}

/** The override that set `keyPath` or a key above it, if any (the last such one wins). */
export function overrideAt(overrides: readonly RecipeOverride[], keyPath: KeyPath): RecipeOverride | undefined {
  const covers = (o: RecipeOverride) => o.keyPath.length <= keyPath.length && o.keyPath.every((key, i) => String(key) === String(keyPath[i]));
  return [...overrides].reverse().find(covers);
}
