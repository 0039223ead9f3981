/** The CLI in process: argument wiring, the default command, and how errors become lines and exit codes. */
import { join } from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { exitCodeOf, formatCliError, UsageError } from '../../src/cli/errors.ts';
import { runProgram, withDefaultCommand } from '../../src/cli/program.ts';
import { DatasetError } from '../../datasets/errors.ts';
import { BackendOptionError, BackendUnavailableError } from '../../src/backend/errors.ts';
import { HfModelDirError } from '../../src/model-files/hf-config.ts';
import { SafetensorsError } from '../../src/formats/safetensors.ts';
import { RecipeError } from '../../src/recipe/errors.ts';
import { runRecipe } from '../../src/stages/run-recipe.ts';
import { TokenizerLoadError } from '../../src/tokenizer/hf-tokenizer.ts';
import { SpecialTokenError } from '../../src/tokenizer/special-tokens.ts';
import { SlmError } from '../../src/util/errors.ts';
import { CheckpointError } from '../../trainers/checkpoint.ts';
import { DivergenceError } from '../../trainers/loop.ts';

vi.mock('../../src/stages/run-recipe.ts', () => ({ runRecipe: vi.fn(async () => ({ runDir: '/runs/tiny' })) }));
vi.mock('../../src/backend/index.ts', () => ({
  doctorReport: vi.fn(async () => ({ backends: ['wasm'] })),
  formatDoctorReport: vi.fn(() => 'wasm: loaded'),
}));

const recipe = join(import.meta.dirname, '../recipe/fixtures/minimal.yaml');

function io() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: { stdout: { write: (t: string) => (out.stdout += t) }, stderr: { write: (t: string) => (out.stderr += t) } },
  };
}

beforeEach(() => vi.mocked(runRecipe).mockClear());

describe('run', () => {
  it('loads the recipe, applies --backend, and prints the result with --json', async () => {
    const { out, io: streams } = io();
    expect(await runProgram(['run', recipe, '--backend', 'cpu', '--json'], streams)).toBe(0);
    const [loaded, options] = vi.mocked(runRecipe).mock.calls[0];
    expect(loaded).toMatchObject({ name: 'tiny', backend: 'cpu' });
    expect(options.json).toBe(true);
    expect(JSON.parse(out.stdout)).toEqual({ runDir: '/runs/tiny' });
  });

  it('is the default command: `slm-train <recipe.yaml>` keeps the recipe backend', async () => {
    const { out, io: streams } = io();
    expect(await runProgram([recipe], streams)).toBe(0);
    expect(vi.mocked(runRecipe).mock.calls[0][0]).toMatchObject({ backend: 'auto' });
    expect(out.stdout).toBe('');
  });

  it('rejects an unknown backend as a usage error', async () => {
    const { io: streams } = io();
    const run = runProgram([recipe, '--backend', 'gpu'], streams);
    await expect(run).rejects.toBeInstanceOf(UsageError);
    await expect(run).rejects.toThrow("argument 'gpu' is invalid");
    expect(runRecipe).not.toHaveBeenCalled();
  });
});

describe('withDefaultCommand', () => {
  const commands = new Set(['run', 'doctor', 'schema', 'help']);
  it.each([
    [['r.yaml'], ['run', 'r.yaml']],
    [['--backend', 'wasm', 'r.yml', '--json'], ['run', '--backend', 'wasm', 'r.yml', '--json']],
    [['run', 'r.yaml'], ['run', 'r.yaml']],
    [['help', 'r.yaml'], ['help', 'r.yaml']],
    [['doctor'], ['doctor']],
    [['trian'], ['trian']],
    [[], []],
  ])('%j -> %j', (argv, expected) => {
    expect(withDefaultCommand(argv, commands)).toEqual(expected);
  });
});

describe('doctor and schema', () => {
  it('doctor prints the formatted report, or JSON with --json', async () => {
    const text = io();
    expect(await runProgram(['doctor'], text.io)).toBe(0);
    expect(text.out.stdout).toBe('wasm: loaded\n');
    const json = io();
    expect(await runProgram(['doctor', '--json'], json.io)).toBe(0);
    expect(JSON.parse(json.out.stdout)).toEqual({ backends: ['wasm'] });
  });

  it('schema prints JSON', async () => {
    const { out, io: streams } = io();
    expect(await runProgram(['schema'], streams)).toBe(0);
    expect(JSON.parse(out.stdout).additionalProperties).toBe(false);
  });
});

describe('usage', () => {
  it('--help and --version succeed', async () => {
    const help = io();
    expect(await runProgram(['--help'], help.io)).toBe(0);
    expect(help.out.stdout).toContain('run [options] <recipe.yaml>');
    const version = io();
    expect(await runProgram(['--version'], version.io)).toBe(0);
    expect(version.out.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('no command shows the help on stderr and exits 2', async () => {
    const { out, io: streams } = io();
    expect(await runProgram([], streams)).toBe(2);
    expect(out.stderr).toContain('Usage: slm-train');
  });

  it('a missing argument is a usage error with one line', async () => {
    const { out, io: streams } = io();
    const error = await runProgram(['run'], streams).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect(formatCliError(error, { verbose: false })).toBe(
      "slm-train: error: missing required argument 'recipe.yaml' (see slm-train --help)",
    );
    expect(exitCodeOf(error)).toBe(2);
    expect(out.stderr).toBe('');
  });
});

describe('formatCliError', () => {
  it('prints an SlmError as its message, on one line, exit code from the error', () => {
    const error = new SlmError('data.jsonl: line 3 is not JSON', { code: 'ERR_DATA', exitCode: 3 });
    expect(formatCliError(error, { verbose: false })).toBe('slm-train: error: data.jsonl: line 3 is not JSON');
    expect(exitCodeOf(error)).toBe(3);
  });

  // Every error class the library throws for bad input is one the user can act on: one line, no hint.
  it.each([
    ['SafetensorsError', new SafetensorsError('w.safetensors', 'TRUNCATED', 'file ends early'), 'TRUNCATED', 'w.safetensors: file ends early'],
    ['HfModelDirError', new HfModelDirError('m/config.json', 'MISSING_FILE', 'file not found'), 'MISSING_FILE', 'm/config.json: file not found'],
    ['CheckpointError', new CheckpointError('c/trainer_state.json', 'JSON', 'is not valid JSON'), 'JSON', 'c/trainer_state.json: is not valid JSON'],
    ['DatasetError', new DatasetError('d.jsonl:3: invalid JSON'), 'ERR_DATASET', 'd.jsonl:3: invalid JSON'],
    ['RecipeError', new RecipeError([{ file: 'r.yaml', line: 2, column: 3, keyPath: 'train.lr', problem: 'expected a number' }]), 'ERR_RECIPE', 'r.yaml:2:3: train.lr: expected a number'],
    ['BackendUnavailableError', new BackendUnavailableError('wasm', [{ backend: 'wasm', ok: false, reason: 'not installed' }]), 'BACKEND_UNAVAILABLE', "backend 'wasm' is not available: wasm: not installed"],
    ['BackendOptionError', new BackendOptionError('initBackend: options.threads must be a positive integer; got 0'), 'INVALID_BACKEND_OPTION', 'initBackend: options.threads must be a positive integer; got 0'],
    ['TokenizerLoadError', new TokenizerLoadError('t/tokenizer.json: not found'), 'ERR_TOKENIZER', 't/tokenizer.json: not found'],
    ['SpecialTokenError', new SpecialTokenError('t/tokenizer_config.json: eos_token "<x>" is not in the vocabulary'), 'ERR_TOKENIZER', 't/tokenizer_config.json: eos_token "<x>" is not in the vocabulary'],
    ['DivergenceError', new DivergenceError(7, 'the loss'), 'TRAINING_DIVERGED', 'training diverged at step 7: the loss is not finite (try a lower lr or clip_grad_norm)'],
  ] as const)('prints a %s as one line with its message, exit code 1', (name, error, code, message) => {
    expect(error).toBeInstanceOf(SlmError);
    expect(error.name).toBe(name);
    expect(error.code).toBe(code);
    expect(formatCliError(error, { verbose: false })).toBe(`slm-train: error: ${message}`);
    expect(exitCodeOf(error)).toBe(1);
    const [line, stackTop] = formatCliError(error, { verbose: true }).split('\n');
    expect(line).toBe(`slm-train: error: ${message}`);
    expect(stackTop).toBe(`${name}: ${message}`);
  });

  it('keeps the step a DivergenceError happened at', () => {
    expect(new DivergenceError(12, 'the gradient norm').step).toBe(12);
  });

  it('marks other errors as unexpected and says how to see the stack', () => {
    const error = new TypeError('x is undefined');
    expect(formatCliError(error, { verbose: false })).toBe(
      'slm-train: error: TypeError: x is undefined (rerun with --verbose for the stack)',
    );
    expect(exitCodeOf(error)).toBe(1);
    expect(formatCliError('a string', { verbose: false })).toContain('thrown value a string');
  });

  it('with verbose, adds the stack and the causes', () => {
    const error = new SlmError('outer', { cause: new Error('inner') });
    const [line, ...rest] = formatCliError(error, { verbose: true }).split('\n');
    expect(line).toBe('slm-train: error: outer');
    expect(rest[0]).toBe('SlmError: outer');
    expect(rest.join('\n')).toContain('Caused by: Error: inner');
  });
});
