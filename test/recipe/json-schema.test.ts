import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { camelCaseKey, snakeCaseKey } from '../../src/recipe/case.ts';
import { allowedKeysAt, recipeJsonSchema, recipeJsonSchemaText, schemasAt } from '../../src/recipe/json-schema.ts';
import type { JsonSchemaNode } from '../../src/recipe/json-schema.ts';

const committed = join(import.meta.dirname, '../../recipes/recipe.schema.json');

describe('recipe JSON Schema', () => {
  it('matches the committed recipes/recipe.schema.json (regenerate: npx tsx src/recipe/write-schema.ts)', () => {
    expect(readFileSync(committed, 'utf8')).toBe(recipeJsonSchemaText());
  });

  it('is draft-07, strict, and shows defaults and required keys', () => {
    const schema = recipeJsonSchema();
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['name', 'student', 'data', 'train']);
    const [train] = schemasAt(['train']);
    // max_steps or epochs: the recipe checks say which one is missing.
    expect(train.required).toBeUndefined();
    expect(train.properties?.epochs).toMatchObject({ default: null });
    expect(train.properties?.schedule).toMatchObject({ default: 'cosine', enum: ['cosine', 'linear', 'constant'] });
    expect(schemasAt(['train', 'betas', 1]).map((node) => node.type)).toEqual(['number']);
  });

  it('lists the keys allowed in each mapping, across variants', () => {
    expect(allowedKeysAt(['student'])).toEqual(['type', 'tokenizer', 'architecture', 'init_std', 'base', 'rank', 'alpha', 'dropout', 'targets', 'rslora', 'weights']);
    expect(allowedKeysAt(['data', 'validation'])).toEqual(['fraction', 'path']);
    expect(allowedKeysAt(['no', 'such'])).toEqual([]);
  });

  it('has only keys that survive the snake_case -> camelCase -> snake_case round trip', () => {
    const keys = collectKeys(recipeJsonSchema());
    expect(keys.length).toBeGreaterThan(40);
    for (const key of keys) expect(snakeCaseKey(camelCaseKey(key))).toBe(key);
  });
});

function collectKeys(node: JsonSchemaNode): string[] {
  const children = [...Object.values(node.properties ?? {}), ...(node.anyOf ?? []), ...(node.oneOf ?? [])];
  return [...Object.keys(node.properties ?? {}), ...children.flatMap(collectKeys)];
}
