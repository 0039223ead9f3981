import type { Command } from 'commander';
import { recipeJsonSchemaText } from '../../recipe/index.ts';
import type { CliIo, CommandContext } from '../io.ts';

export function schemaCommand(io: CliIo): number {
  io.stdout.write(recipeJsonSchemaText());
  return 0;
}

export function registerSchema(program: Command, { io, setExitCode }: CommandContext): void {
  program
    .command('schema')
    .description("print the recipe's JSON Schema (for editors: recipes/recipe.schema.json)")
    .action(() => setExitCode(schemaCommand(io)));
}
