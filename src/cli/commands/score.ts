import type { Command } from 'commander';
import { UsageError } from '../errors.ts';
import type { CliIo, CommandContext } from '../io.ts';
import { withModel, type ModelTarget } from '../model-target.ts';
import { backendOption, idListArg, integerArg, modelOption } from '../options.ts';

export interface ScoreCommandOptions extends ModelTarget {
  text?: string;
  ids?: number[];
  topK: number;
  json: boolean;
}

/** Per-token log-probabilities of a text or id sequence under a model directory. */
export async function scoreCommand(options: ScoreCommandOptions, io: CliIo): Promise<number> {
  if ((options.text === undefined) === (options.ids === undefined)) throw new UsageError('score: give exactly one of --text or --ids');
  const { scoreTokens } = await import('../../model/score.ts');
  return withModel(options, 'training', async ({ model, tokenizer, project }) => {
    let ids = options.ids;
    if (ids === undefined) {
      if (!tokenizer) throw new UsageError(`score: ${options.model} has no tokenizer; pass --ids instead of --text`);
      ids = tokenizer.encode(options.text!, { addSpecialTokens: true });
    }
    const scores = await scoreTokens(model, ids, options.topK, project);
    if (options.json) {
      io.stdout.write(`${JSON.stringify({ ids: scores.ids, logprobs: scores.logprobs, ...(options.topK > 0 && { top_k: scores.topK }) })}\n`);
      return 0;
    }
    const show = (id: number) => (tokenizer ? JSON.stringify(tokenizer.decode([id])) : '');
    io.stdout.write(`${'pos'.padStart(5)} ${'id'.padStart(7)}  ${'logprob'.padStart(10)}  token\n`);
    scores.ids.forEach((id, i) => {
      const logprob = scores.logprobs[i];
      io.stdout.write(`${String(i).padStart(5)} ${String(id).padStart(7)}  ${(logprob === null ? '-' : logprob.toFixed(4)).padStart(10)}  ${show(id)}\n`);
    });
    const total = scores.logprobs.reduce<number>((sum, lp) => sum + (lp ?? 0), 0);
    io.stdout.write(`total log-probability ${total.toFixed(4)} over ${ids.length - 1} predicted tokens\n`);
    return 0;
  });
}

export function registerScore(program: Command, { io, setExitCode }: CommandContext): void {
  program
    .command('score')
    .description('per-token log-probabilities of a text under a model')
    .addOption(modelOption())
    .option('--text <text>', 'text to score (tokenized with the model tokenizer, special tokens added)')
    .option('--ids <ids>', 'token ids to score, comma-separated', idListArg)
    .option('--top-k <k>', 'also list the k most likely tokens at each position', integerArg(0), 0)
    .addOption(backendOption().default('auto'))
    .option('--json', 'print {ids, logprobs[, top_k]} as JSON; logprobs[0] is null')
    .action(async (flags: Omit<ScoreCommandOptions, 'json'> & { json?: boolean }) =>
      setExitCode(await scoreCommand({ ...flags, json: flags.json ?? false }, io)),
    );
}
