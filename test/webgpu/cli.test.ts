/** What a user checks first: doctor names the adapter, and score gives wasm's log-probabilities on webgpu. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runProgram } from '../../src/cli/program.ts';
import { webgpuOrSkip } from './webgpu-backend.ts';

const available = await webgpuOrSkip();
const TINY_QWEN2 = join(import.meta.dirname, '../fixtures/hf/tiny-qwen2');

async function json(argv: string[]): Promise<Record<string, unknown>> {
  let stdout = '';
  const code = await runProgram(argv, { stdout: { write: (text: string) => ((stdout += text), true) }, stderr: { write: () => true } });
  expect(code).toBe(0);
  return JSON.parse(stdout);
}

describe.skipIf(!available)('slm-train on webgpu', () => {
  it('doctor --json --backend webgpu reports the adapter and selects it', async () => {
    const report = await json(['doctor', '--json', '--backend', 'webgpu']);
    expect(report.webgpu).toMatchObject({ adapter: { vendor: expect.any(String), type: expect.stringMatching(/software|discrete|integrated|unknown/) } });
    expect(report.selected).toMatchObject({ backend: 'webgpu', tfjsName: 'webgpu' });
  });

  it('score --backend webgpu agrees with wasm within 5e-3 nats', async () => {
    const ids = '1,17,4,33,9,2,48,5,21,60';
    const score = async (backend: string) => (await json(['score', '--model', TINY_QWEN2, '--ids', ids, '--backend', backend, '--json'])).logprobs as (number | null)[];
    const [webgpu, wasm] = [await score('webgpu'), await score('wasm')];
    expect(webgpu).toHaveLength(10);
    webgpu.forEach((logprob, i) => (i === 0 ? expect(logprob).toBeNull() : expect(Math.abs(logprob! - wasm[i]!)).toBeLessThan(5e-3)));
  });
});
