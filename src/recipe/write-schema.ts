/** Regenerates recipes/recipe.schema.json from the zod schema: `npx tsx src/recipe/write-schema.ts`. */
import { writeFile } from 'node:fs/promises';
import { recipeJsonSchemaText } from './json-schema.ts';

const target = new URL('../../recipes/recipe.schema.json', import.meta.url);
await writeFile(target, recipeJsonSchemaText());
process.stdout.write(`wrote ${target.pathname}\n`);
