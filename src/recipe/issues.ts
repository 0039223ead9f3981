/**
 * Turns zod's issues into sentences about recipe.yaml: the key path, what was given, what is allowed.
 * `data` is the parsed YAML, used to quote what the user wrote.
 */
import type { z } from 'zod';
import { allowedKeysAt, schemasAt } from './json-schema.ts';
import { valueAt } from './key-path.ts';
import type { KeyPath } from './key-path.ts';
import { closestMatch } from './suggest.ts';
import type { Target } from './yaml-source.ts';

export interface SchemaProblem {
  keyPath: KeyPath;
  message: string;
  target: Target;
}

type Issue = z.core.$ZodIssue;

export function describeIssues(issues: readonly Issue[], data: unknown): SchemaProblem[] {
  const problems = issues.flatMap((issue) => describeIssue(issue, data));
  // A misspelt key also makes the key it was meant to be missing: report the misspelling only.
  const misspelt = new Set(problems.flatMap((problem) => (problem.meant ? [problem.meant.join('.')] : [])));
  return problems
    .filter((problem) => !(problem.missing && misspelt.has(problem.keyPath.join('.'))))
    .map(({ keyPath, message, target }) => ({ keyPath, message, target }));
}

interface DescribedIssue extends SchemaProblem {
  /** The key an unknown key probably meant. */
  meant?: KeyPath;
  missing?: boolean;
}

function describeIssue(issue: Issue, data: unknown): DescribedIssue[] {
  const branch = matchingUnionBranch(issue);
  if (branch) return branch.flatMap((inner) => describeIssue({ ...inner, path: [...issue.path, ...inner.path] } as Issue, data));
  const keyPath = issue.path.map((key) => (typeof key === 'number' ? key : String(key)));
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => unknownKey(keyPath, key));
  const given = valueAt(data, keyPath);
  if (given === undefined) {
    return [{ keyPath, message: `required, ${expectation(issue, keyPath)}`, target: 'value', missing: true }];
  }
  // A `*_env` key may hold a pasted secret instead of a variable name: never echo it.
  const quoteGiven = issue.code !== 'custom' && !isSecretReference(keyPath);
  const expected = expectation(issue, keyPath);
  const message = quoteGiven ? `${expected}, got ${quote(given)}` : expected;
  return [{ keyPath, message, target: 'value' }];
}

/**
 * The issues of the one union variant whose type the value has (a list for `'all-linear' | [q, k]`), so
 * the error points inside the value instead of saying it matches no variant.
 */
function matchingUnionBranch(issue: Issue): Issue[] | undefined {
  if (issue.code !== 'invalid_union' || !('errors' in issue)) return undefined;
  const sameType = issue.errors.filter(
    (errors) => errors.length > 0 && !errors.some((e) => e.path.length === 0 && (e.code === 'invalid_type' || e.code === 'invalid_value')),
  );
  return sameType.length === 1 ? (sameType[0] as Issue[]) : undefined;
}

function isSecretReference(keyPath: KeyPath): boolean {
  const last = keyPath.at(-1);
  return typeof last === 'string' && last.endsWith('_env');
}

function unknownKey(parent: KeyPath, key: string): DescribedIssue {
  const allowed = allowedKeysAt(parent);
  const suggestion = closestMatch(key, allowed);
  const keyPath = [...parent, key];
  if (!suggestion) return { keyPath, message: `unknown key (allowed: ${allowed.join(', ')})`, target: 'key' };
  return { keyPath, message: `unknown key (did you mean ${suggestion}?)`, target: 'key', meant: [...parent, suggestion] };
}

/** "expected ..." for one issue, without the given value. */
function expectation(issue: Issue, keyPath: KeyPath): string {
  switch (issue.code) {
    case 'invalid_type': {
      const noun = typeNoun(isIntegerKey(keyPath) && issue.expected === 'number' ? 'int' : issue.expected);
      return `expected ${noun}${isNullableKey(keyPath) ? ' or null' : ''}`;
    }
    case 'invalid_value':
      return `expected ${oneOf(issue.values)}`;
    case 'invalid_union':
      return 'options' in issue && issue.options ? `expected ${oneOf(issue.options)}` : 'expected a valid value';
    case 'too_small':
      return `expected ${boundNoun(issue.origin, keyPath)} ${issue.inclusive ? '>=' : '>'} ${issue.minimum}`;
    case 'too_big':
      return `expected ${boundNoun(issue.origin, keyPath)} ${issue.inclusive ? '<=' : '<'} ${issue.maximum}`;
    default:
      return issue.message;
  }
}

function oneOf(values: readonly unknown[]): string {
  return values.length === 1 ? String(values[0]) : `one of ${values.map(String).join(' | ')}`;
}

const TYPE_NOUNS: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  tuple: 'a list',
  null: 'null',
};

/** A zod type name as a YAML user reads it: 'an integer', 'a mapping', ... */
export function typeNoun(expected: string): string {
  return TYPE_NOUNS[expected] ?? expected;
}

function boundNoun(origin: string, keyPath: KeyPath): string {
  if (origin === 'array') return 'a list with length';
  if (origin === 'string') return 'a string with length';
  return typeNoun(isIntegerKey(keyPath) ? 'int' : origin);
}

// zod reports integers as numbers in some issues, and a nullable's issue names only the other type:
// the schema knows better.
function isIntegerKey(keyPath: KeyPath): boolean {
  return schemasAt(keyPath).some((node) => node.type === 'integer');
}

function isNullableKey(keyPath: KeyPath): boolean {
  return schemasAt(keyPath).some((node) => node.type === 'null');
}

/** A value from a YAML file as an error message shows it. */
export function quote(value: unknown): string {
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (value !== null && typeof value === 'object') return 'a mapping';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
