import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { ExportFormat } from '../../export/export-run.ts';
import { GGUF_EXPORT_TYPES, ggufExportType, type GgufExportType } from '../../formats/gguf-quant-mix.ts';
import type { WritableDtype } from '../../formats/safetensors.ts';
import { SlmError } from '../../util/errors.ts';
import type { CliIo, CommandContext } from '../io.ts';

export interface ExportCommandOptions {
  run: string;
  format: { format: ExportFormat; ggufType?: GgufExportType };
  dtype?: WritableDtype;
  ollama?: string;
  json: boolean;
}

/** `gguf`, `gguf:q8_0`, `hf`, ... -> the format and, for GGUF, its tensor type. */
export function parseFormat(value: string): { format: ExportFormat; ggufType?: GgufExportType } {
  const [format, type] = value.toLowerCase().split(':');
  const ggufType = type === undefined ? undefined : ggufExportType(type);
  if ((format === 'gguf' || format === 'ollama') && (type === undefined || ggufType)) return { format, ggufType };
  if ((format === 'peft' || format === 'hf' || format === 'gguf-lora') && type === undefined) return { format };
  throw new InvalidArgumentError(`expected peft, hf, gguf[:${GGUF_TYPE_NAMES}], gguf-lora or ollama[:${GGUF_TYPE_NAMES}], got "${value}"`);
}

const GGUF_TYPE_NAMES = Object.values(GGUF_EXPORT_TYPES)
  .map((type) => type.name)
  .join('|');

function parseDtype(value: string): WritableDtype {
  const dtype = value.toUpperCase();
  if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') return dtype;
  throw new InvalidArgumentError(`expected f32, f16 or bf16, got "${value}"`);
}

export async function exportCommand(options: ExportCommandOptions, io: CliIo): Promise<number> {
  const { initBackend } = await import('../../backend/index.ts');
  const { exportRun } = await import('../../export/export-run.ts');
  // File work, read one tensor at a time: wasm (or cpu), never a GPU backend, whose reads are asynchronous only.
  await initBackend('wasm');
  const format = options.ollama ? { ...options.format, format: 'ollama' as const } : options.format;
  const result = await exportRun({ run: options.run, format: format.format, ggufType: format.ggufType, dtype: options.dtype });
  const ollama = options.ollama ? createOllamaModel(options.ollama, result.path) : undefined;
  if (options.json) {
    io.stdout.write(`${JSON.stringify({ ...result, ...(ollama && { ollama }) })}\n`);
    return 0;
  }
  io.stdout.write(`wrote ${result.format} export to ${result.path}: ${result.files.join(', ')}\n`);
  if (ollama) io.stdout.write(ollama.created ? `created Ollama model ${options.ollama}\n` : `ollama is not installed here; to create the model run:\n  ${ollama.command}\n`);
  return 0;
}

/** Runs `ollama create` when the ollama command exists; otherwise returns the command to run. */
function createOllamaModel(name: string, dir: string): { command: string; created: boolean } {
  const modelfile = join(dir, 'Modelfile');
  const command = `ollama create ${name} -f ${modelfile}`;
  const result = spawnSync('ollama', ['create', name, '-f', modelfile], { cwd: dir, stdio: 'inherit' });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') return { command, created: false };
  if (result.status !== 0) throw new SlmError(`'${command}' failed with exit code ${result.status}`, { code: 'ERR_OLLAMA' });
  return { command, created: true };
}

export function registerExport(program: Command, { io, setExitCode }: CommandContext): void {
  program
    .command('export')
    .description('write a finished run as a PEFT adapter, a Hugging Face folder, a GGUF file or an Ollama model')
    .requiredOption('--run <dir>', 'the run folder, runs/<name>')
    .option('--format <format>', `peft | hf | gguf[:${GGUF_TYPE_NAMES}] | gguf-lora | ollama[:${GGUF_TYPE_NAMES}]`, parseFormat, { format: 'hf' })
    .option('--dtype <dtype>', 'tensor type of an hf export: f32, f16 or bf16', parseDtype)
    .option('--ollama <name>', 'also create an Ollama model with this name (runs `ollama create`, or prints the command)')
    .option('--json', 'print {format, path, files[, ollama]} as JSON')
    .action(async (flags: Omit<ExportCommandOptions, 'json'> & { json?: boolean }) =>
      setExitCode(await exportCommand({ ...flags, json: flags.json ?? false }, io)),
    );
}
