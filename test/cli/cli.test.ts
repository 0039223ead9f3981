/** The executable end to end; each spawn costs about a second, so only what needs a real process is here. */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');

function slmTrain(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', ['bin/slm-train.js', ...args], { cwd: root }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

function recipeWithTypeError(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  writeFileSync(join(dir, 'train.jsonl'), '{"text": "x"}\n');
  const minimal = readFileSync(join(root, 'test/recipe/fixtures/minimal.yaml'), 'utf8');
  writeFileSync(join(dir, 'bad.yaml'), minimal.replace('max_steps: 10', 'max_steps: ten'));
  return join(dir, 'bad.yaml');
}

/** A model directory whose config.json is fine and whose weights file is not safetensors at all. */
function modelWithMalformedWeights(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cli-model-'));
  copyFileSync(join(root, 'test/fixtures/hf/tiny-qwen2/config.json'), join(dir, 'config.json'));
  writeFileSync(join(dir, 'model.safetensors'), 'not a safetensors file');
  return dir;
}

describe.concurrent('slm-train', () => {
  it('ends quietly with code 0 when its reader closes the pipe early', async () => {
    const child = spawn('node', ['bin/slm-train.js', 'schema'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('exits 2 with one usage line for an unknown command', async () => {
    const { code, stdout, stderr } = await slmTrain('trian');
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe("slm-train: error: unknown command 'trian' (see slm-train --help)\n");
  });

  it('exits 1 with one line pointing at the bad key of a recipe, no stack', async () => {
    const recipe = recipeWithTypeError();
    const { code, stderr } = await slmTrain(recipe);
    expect(code).toBe(1);
    expect(stderr).toBe(`slm-train: error: ${recipe}:13:14: train.max_steps: expected an integer or null, got "ten"\n`);
  });

  it('takes key.path=value overrides after the recipe, and names the override a problem comes from', async () => {
    const recipe = recipeWithTypeError();
    // The first override mends the file's bad max_steps; the second is the only problem left.
    const { code, stderr } = await slmTrain(recipe, 'train.max_steps=12', 'train.lrr=1e-4');
    expect(code).toBe(1);
    expect(stderr).toBe(`slm-train: error: ${recipe}: override train.lrr=1e-4: train.lrr: unknown key (did you mean lr?)\n`);
  });

  it('shows the stack with --verbose', async () => {
    const recipe = recipeWithTypeError();
    const { code, stderr } = await slmTrain('run', recipe, '--verbose');
    expect(code).toBe(1);
    const [line, ...stack] = stderr.trimEnd().split('\n');
    expect(line).toBe(`slm-train: error: ${recipe}:13:14: train.max_steps: expected an integer or null, got "ten"`);
    expect(stack[0]).toMatch(/^RecipeError: /);
    expect(stack.some((frame) => /^\s+at .*load\.ts/.test(frame))).toBe(true);
  });

  it('exits 1 with one line naming the file when score is given malformed safetensors', async () => {
    const model = modelWithMalformedWeights();
    const { code, stdout, stderr } = await slmTrain('score', '--model', model, '--ids', '1,2', '--backend', 'cpu');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    // the first 8 bytes, 'not a sa', read as the little-endian header length
    const length = Buffer.from('not a sa').readBigUInt64LE();
    expect(stderr).toBe(`slm-train: error: ${join(model, 'model.safetensors')}: header length ${length} exceeds the 100000000-byte limit\n`);
  });

  it('prints the recipe JSON Schema', async () => {
    const { code, stdout } = await slmTrain('schema');
    expect(code).toBe(0);
    const schema = JSON.parse(stdout);
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(Object.keys(schema.properties)).toContain('train');
  });
});
