/**
 * The recipe's JSON Schema, for editors: recipes that start with
 * `# yaml-language-server: $schema=./recipe.schema.json` get completion, hover text and validation.
 * Draft-07 because that is what yaml-language-server implements. Generated from the zod schema; the
 * committed copy is recipes/recipe.schema.json (regenerate with `npx tsx src/recipe/write-schema.ts`).
 */
import { z } from 'zod';
import type { KeyPath } from './key-path.ts';
import { recipeSchema } from './schema.ts';

export interface JsonSchemaNode {
  type?: string;
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode | JsonSchemaNode[];
  anyOf?: JsonSchemaNode[];
  oneOf?: JsonSchemaNode[];
  [keyword: string]: unknown;
}

let cached: JsonSchemaNode | undefined;

export function recipeJsonSchema(): JsonSchemaNode {
  cached ??= z.toJSONSchema(recipeSchema, {
    io: 'input',
    target: 'draft-07',
    override: ({ jsonSchema }) => dropSafeIntegerBounds(jsonSchema),
  }) as JsonSchemaNode;
  return cached;
}

/** The schema as the committed file holds it. */
export function recipeJsonSchemaText(): string {
  return `${JSON.stringify(recipeJsonSchema(), null, 2)}\n`;
}

/** The schemas a value at `keyPath` may match (every variant, where the schema has alternatives). */
export function schemasAt(keyPath: KeyPath): JsonSchemaNode[] {
  let nodes = alternatives(recipeJsonSchema());
  for (const key of keyPath) nodes = nodes.flatMap((node) => alternatives(...childSchemas(node, key)));
  return nodes;
}

/** The keys a mapping may hold at `keyPath`. */
export function allowedKeysAt(keyPath: KeyPath): string[] {
  return [...new Set(schemasAt(keyPath).flatMap((node) => Object.keys(node.properties ?? {})))];
}

function childSchemas(node: JsonSchemaNode, key: string | number): JsonSchemaNode[] {
  const child = typeof key === 'number' ? (Array.isArray(node.items) ? node.items[key] : node.items) : node.properties?.[key];
  return child ? [child] : [];
}

function alternatives(...nodes: JsonSchemaNode[]): JsonSchemaNode[] {
  return nodes.flatMap((node) => [node, ...(node.anyOf ?? []), ...(node.oneOf ?? [])]);
}

// zod writes the safe-integer range into every integer; it says nothing a reader needs.
function dropSafeIntegerBounds(schema: Record<string, unknown>): void {
  if (schema.maximum === Number.MAX_SAFE_INTEGER) delete schema.maximum;
  if (schema.minimum === Number.MIN_SAFE_INTEGER) delete schema.minimum;
}
