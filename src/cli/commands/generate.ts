import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import type { Command } from 'commander';
import { UsageError } from '../errors.ts';
import type { CliIo, CommandContext } from '../io.ts';
import { withModel, type ModelTarget } from '../model-target.ts';
import { backendOption, integerArg, modelOption, numberArg } from '../options.ts';

export interface GenerateCommandOptions extends ModelTarget {
  /** The text to continue; `-`: read it from stdin. */
  prompt?: string;
  /** A file holding the text to continue; `-`: stdin. */
  promptFile?: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  json: boolean;
}

/** Continues a prompt with a model directory, streaming the text as it is decoded. */
export async function generateCommand(options: GenerateCommandOptions, io: CliIo): Promise<number> {
  const { generateTokens } = await import('../../model/generate.ts');
  const prompt = await promptText(options, io);
  return withModel(options, 'decoding', async ({ model, tokenizer, project }) => {
    if (!tokenizer) throw new UsageError(`generate: ${options.model} has no tokenizer`);
    const promptIds = tokenizer.encode(prompt, { addSpecialTokens: true });
    const ids: number[] = [];
    let printed = '';
    const started = performance.now();
    for await (const id of generateTokens(model, promptIds, { ...options, project })) {
      ids.push(id);
      const text = tokenizer.decode(ids, { skipSpecialTokens: true });
      // A multi-byte character split across tokens decodes as U+FFFD until its last byte arrives.
      if (!options.json && !text.endsWith('\uFFFD')) {
        io.stdout.write(text.slice(printed.length));
        printed = text;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const text = tokenizer.decode(ids, { skipSpecialTokens: true });
    if (options.json) {
      io.stdout.write(`${JSON.stringify({ prompt, prompt_ids: promptIds, ids, text, tokens_per_second: ids.length / seconds })}\n`);
    } else {
      io.stdout.write(`${text.slice(printed.length)}\n`);
    }
    return 0;
  });
}

/** The prompt exactly as written (newlines and all): from --prompt, a file, or stdin for `-`. */
async function promptText({ prompt, promptFile }: GenerateCommandOptions, io: CliIo): Promise<string> {
  if ((prompt === undefined) === (promptFile === undefined)) throw new UsageError('generate: give --prompt TEXT or --prompt-file PATH (either may be - for stdin)');
  if (prompt !== undefined && prompt !== '-') return prompt;
  if (promptFile !== undefined && promptFile !== '-') {
    return readFile(promptFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new UsageError(`--prompt-file ${promptFile}: cannot read it (${error.code ?? error.message})`);
    });
  }
  if (!io.stdin) throw new UsageError('generate: no stdin to read the prompt from');
  return text(io.stdin);
}

export function registerGenerate(program: Command, { io, setExitCode }: CommandContext): void {
  program
    .command('generate')
    .description('continue a prompt with a model (greedy by default)')
    .addOption(modelOption())
    .option('--prompt <text>', 'the text to continue; - reads it from stdin')
    .option('--prompt-file <path>', 'a file holding the text to continue (newlines kept); - for stdin')
    .option('--max-tokens <n>', 'new tokens at most', integerArg(1), 128)
    .option('--temperature <t>', '0: greedy; higher: more varied', numberArg, 0)
    .option('--top-k <k>', 'sample among the k most likely tokens (0: all)', integerArg(0), 0)
    .option('--top-p <p>', 'sample among the most likely tokens holding probability p', numberArg, 1)
    .option('--seed <s>', 'seed of the sampler', integerArg(0), 0)
    .addOption(backendOption().default('auto'))
    .option('--json', 'print {prompt, prompt_ids, ids, text, tokens_per_second} as JSON')
    .action(async (flags: Omit<GenerateCommandOptions, 'json'> & { json?: boolean }) =>
      setExitCode(await generateCommand({ ...flags, json: flags.json ?? false }, io)),
    );
}
