/**
 * `slm-train plan` and the train stage's memory check on a full-size Llama-3.2-3B (a sparse folder): held
 * as float32 it cannot fit the wasm heap and the run stops before reading a weight, with one line that
 * names the biggest consumer and the knob; streamed, it fits.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shapeConfig } from '../../src/bench/model-shapes.ts';
import { writeSparseModel } from '../helpers/sparse-model.ts';

const root = join(import.meta.dirname, '../..');
const dir = await mkdtemp(join(tmpdir(), 'slm-plan-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
const base = join(dir, 'llama3.2-3b');
await writeSparseModel(base, shapeConfig('llama3.2-3b'));

function slmTrain(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', ['bin/slm-train.js', ...args], { cwd: root }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

async function recipe(weights: string): Promise<string> {
  const path = join(dir, `${weights}.yaml`);
  const yaml = `name: plan-${weights}
backend: wasm
output_dir: ${join(dir, 'runs')}
student: { type: lora, base: ${base}, rank: 16, targets: all-linear, weights: ${weights} }
data: { train: ${join(root, 'datasets/data/stories-small.jsonl')}, seq_len: 512 }
train: { max_steps: 1, batch_size: 1 }
`;
  await writeFile(path, yaml);
  return path;
}

describe('the memory plan of a 3B LoRA run on wasm', () => {
  it('streamed: fits, with the base compact on the host and layers recomputed', async () => {
    const { code, stdout } = await slmTrain('plan', await recipe('streamed'), '--json');
    expect(code).toBe(0);
    const plan = JSON.parse(stdout);
    expect(plan).toMatchObject({ backend: 'wasm', residency: 'streamed', recompute: true, fits: true, problem: null });
    const item = (name: string) => plan.items.find((i: { item: string }) => i.item === name);
    expect(item('base weights (compact)')).toMatchObject({ where: 'host', bytes: 3_212_749_824 * 2 });
    expect(plan.backendPeak).toBeLessThan(plan.capacity.bytes);
  });

  it('resident: the plan and the run refuse it before reading a weight, naming the base and the knob', async () => {
    const planned = await slmTrain('plan', await recipe('resident'));
    expect(planned.code).toBe(1);
    expect(planned.stdout).toMatch(/^base weights +backend +12\.0 GiB/m);
    expect(planned.stdout).toMatch(/does not fit: needs [\d.]+ GiB of backend memory and wasm holds 3\.5 GiB; the largest part is base weights .*student\.weights: streamed/);
    const ran = await slmTrain(await recipe('resident'));
    expect(ran.code).toBe(1);
    const lines = ran.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^slm-train: error: student: needs [\d.]+ GiB of backend memory .*student\.weights: streamed/);
  });
});
