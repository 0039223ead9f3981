import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { runProgram } from '../../src/cli/program.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';

const dir = mkdtempSync(join(tmpdir(), 'slm-generate-cli-'));
const tokenizer = createByteLevelTokenizer();

beforeAll(async () => {
  await initBackend('cpu');
  const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2 });
  await writeHfModelDir(join(dir, 'model'), { config, tensors: CausalLM.init(config, { seed: 1 }).hfTensors(), dtype: 'F32', tokenizerJson: tokenizer.toJSON() });
});

async function generate(flags: string[], stdin?: string) {
  let stdout = '';
  const io = { stdout: { write: (text: string) => ((stdout += text), true) }, stderr: { write: () => true }, ...(stdin !== undefined && { stdin: Readable.from([stdin]) }) };
  const code = await runProgram(['generate', '--model', join(dir, 'model'), '--max-tokens', '2', '--backend', 'cpu', '--json', ...flags], io).catch((error: unknown) => error);
  return { code, output: stdout ? JSON.parse(stdout) : undefined };
}

describe('slm-train generate', () => {
  it('reads the prompt from a file or stdin with its newlines, which a shell string cannot carry', async () => {
    const prompt = 'Question: 2 + 2?\nAnswer:';
    writeFileSync(join(dir, 'prompt.txt'), prompt);
    const fromFile = await generate(['--prompt-file', join(dir, 'prompt.txt')]);
    expect(fromFile.code).toBe(0);
    expect(fromFile.output.prompt).toBe(prompt);
    expect(fromFile.output.prompt_ids).toEqual(tokenizer.encode(prompt, { addSpecialTokens: true }));
    expect((await generate(['--prompt', '-'], prompt)).output.prompt).toBe(prompt);
    expect((await generate(['--prompt-file', '-'], prompt)).output.ids).toEqual(fromFile.output.ids);
  });

  it('wants exactly one of --prompt and --prompt-file, and names an unreadable file', async () => {
    expect((await generate([])).code).toMatchObject({ exitCode: 2, message: expect.stringMatching(/give --prompt TEXT or --prompt-file PATH/) });
    expect((await generate(['--prompt', 'a', '--prompt-file', 'b'])).code).toMatchObject({ exitCode: 2 });
    expect((await generate(['--prompt-file', join(dir, 'missing.txt')])).code).toMatchObject({ message: expect.stringMatching(/missing\.txt: cannot read it \(ENOENT\)/) });
  });
});
