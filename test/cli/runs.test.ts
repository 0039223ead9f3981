import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runsCommand } from '../../src/cli/commands/runs.ts';
import { runProgram } from '../../src/cli/program.ts';
import { SafetensorsFile } from '../../src/formats/safetensors.ts';
import { writeRunReport } from '../../src/report/run-report.ts';
import { makeFakeRun, MAX_STEPS, STEPS_DONE, type FakeRun } from '../report/fake-run.ts';

let run: FakeRun;

beforeAll(async () => {
  run = await makeFakeRun();
  await writeRunReport(run.runDir);
  // a run that was killed before it wrote its recipe, and folders that are no runs
  mkdirSync(join(run.outputDir, 'killed'));
  writeFileSync(join(run.outputDir, 'killed', 'metrics.jsonl'), '{"step":1,"loss":5.25}\n');
  mkdirSync(join(run.outputDir, '.eval-cache'));
  writeFileSync(join(run.outputDir, '.eval-cache', 'metrics.jsonl'), '');
  mkdirSync(join(run.outputDir, 'notes'));
});

function buffer() {
  let text = '';
  return { stream: { write: (chunk: string) => ((text += chunk), true) }, text: () => text };
}

async function storedParameters(dir: string): Promise<number> {
  const file = await SafetensorsFile.open(join(dir, 'model.safetensors'));
  const total = file.names().reduce((sum, name) => sum + file.info(name).shape.reduce((a, b) => a * b, 1), 0);
  await file.close();
  return total;
}

describe('slm-train runs', () => {
  it('lists each run folder with its student, progress, losses and primary metrics as JSON', async () => {
    const out = buffer();
    expect(await runsCommand({ dir: run.outputDir, json: true }, { stdout: out.stream, stderr: buffer().stream })).toBe(0);
    const runs = JSON.parse(out.text());
    expect(runs.map((r: { name: string }) => r.name)).toEqual(['fake-kd', 'killed']);
    const lastValidation = run.metrics.filter((r) => r.val_loss !== undefined).at(-1)!;
    expect(runs[0]).toEqual({
      name: 'fake-kd',
      dir: run.runDir,
      student: { kind: 'scratch', parameters: await storedParameters(join(run.runDir, 'final')) },
      steps: { done: STEPS_DONE, max: MAX_STEPS },
      finalLoss: run.metrics.at(-1)!.loss,
      validationLoss: lastValidation.val_loss,
      suites: run.student.map((r) => ({ suite: r.suite, metric: r.primaryMetric, ...r.metrics[r.primaryMetric] })),
      final: true,
      report: join(run.runDir, 'report.html'),
      problem: null,
    });
    expect(runs[1]).toMatchObject({ name: 'killed', student: null, steps: { done: 1, max: null }, finalLoss: 5.25, final: false, report: null });
    expect(runs[1].problem).toContain('recipe.yaml does not exist');
  });

  it('prints a table through the CLI, with the same numbers', async () => {
    const out = buffer();
    expect(await runProgram(['runs', '--dir', run.outputDir], { stdout: out.stream, stderr: buffer().stream })).toBe(0);
    const [header, fake, killed] = out.text().split('\n');
    expect(header).toMatch(/^run +student +parameters +steps +train loss +val loss/);
    const parameters = (await storedParameters(join(run.runDir, 'final'))).toLocaleString('en');
    const gsm8k = run.student[0].metrics['exact_match,strict-match'];
    expect(fake).toContain(`fake-kd  scratch  ${parameters}`);
    expect(fake).toContain(`${STEPS_DONE}/${MAX_STEPS}`);
    expect(fake).toContain((run.metrics.at(-1)!.loss as number).toFixed(4));
    expect(fake).toContain(`gsm8k ${(gsm8k.value * 100).toFixed(2)} ± ${(gsm8k.stderr * 100).toFixed(2)}`);
    expect(fake).toContain(join(run.runDir, 'report.html'));
    expect(killed).toMatch(/^killed +\? +\? +1\/\? +5\.2500 +- +- +no +-$/);
  });

  it('fails with a message naming a folder that does not exist', async () => {
    await expect(runsCommand({ dir: join(run.outputDir, 'nope'), json: true }, { stdout: buffer().stream, stderr: buffer().stream })).rejects.toThrow(
      `${join(run.outputDir, 'nope')}: cannot list runs (no such folder)`,
    );
  });
});
