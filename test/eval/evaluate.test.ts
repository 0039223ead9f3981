import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { compareCommand } from '../../src/cli/commands/compare.ts';
import { runProgram } from '../../src/cli/program.ts';
import { evaluate } from '../../src/eval/evaluate.ts';
import { localTarget, serverTarget } from '../../src/eval/targets.ts';
import { writeHfModelDir } from '../../src/formats/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { silentLogger } from '../../src/run/progress.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { FakeTeacherServer } from '../teachers/fake-teacher-server.ts';

const servers: FakeTeacherServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** Ten problems "a + b"; the scripted model answers a + b, except for a in `wrongFor`. */
function writeProblems(dir: string): string {
  const file = join(dir, 'test.jsonl');
  const lines = Array.from({ length: 10 }, (_, a) => JSON.stringify({ question: `What is ${a} + 10?`, answer: `${a} + 10 = ${a + 10}\n#### ${a + 10}` }));
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

async function scriptedServer(wrongFor: ReadonlySet<number>): Promise<FakeTeacherServer> {
  const server = await FakeTeacherServer.start({
    answer: (body) => {
      const prompt = (body.messages as { content: string }[]).at(-1)!.content;
      const a = Number(/What is (\d+) \+ 10\?/.exec(prompt)![1]);
      const sum = a + 10 + (wrongFor.has(a) ? 1 : 0);
      return [{ token: ` ${a} + 10 = ${sum}\n#### ${sum}\n\nQuestion: next`, logprob: -0.1, top: [] }];
    },
  });
  servers.push(server);
  return server;
}

async function evaluateServer(dir: string, out: string, wrongFor: number[]) {
  const server = await scriptedServer(new Set(wrongFor));
  const target = await serverTarget({
    provider: 'openai', model: `scripted-${wrongFor.join('-')}`, endpoints: [`${server.url}/v1`],
    concurrency: 2, requestsPerMinute: null, timeoutS: 10, maxRetries: 0,
  });
  const data = writeProblems(dir);
  const results = await evaluate(target, [{ suite: 'gsm8k', data, style: 'zero-shot', limit: null }], {
    outDir: join(dir, out), cacheFile: join(dir, 'cache.jsonl'), seed: 1, logger: silentLogger,
  });
  return { results, server };
}

describe('evaluating a model whose answers are known', () => {
  it('gives exactly the expected accuracy, with the harness stderr, per-sample records and a summary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-eval-'));
    const { results } = await evaluateServer(dir, 'a', [2, 5, 7]);
    const metric = results[0].metrics['exact_match,flexible-extract'];
    expect(metric.value).toBe(0.7);
    expect(metric.n).toBe(10);
    expect(metric.stderr).toBeCloseTo(Math.sqrt((0.7 * 0.3 * 10) / 9 / 10), 12);
    expect(results[0].metrics['exact_match,strict-match'].value).toBe(0.7);

    const written = JSON.parse(readFileSync(join(dir, 'a/gsm8k_zeroshot.json'), 'utf8'));
    expect(written).toMatchObject({ suite: 'gsm8k_zeroshot', promptStyle: 'zero-shot', seed: 1, n: 10 });
    const samples = readFileSync(join(dir, 'a/gsm8k_zeroshot.samples.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(samples[2]).toMatchObject({ output: ' 2 + 10 = 13\n#### 13\n\n', extracted: { 'strict-match': '13' }, metrics: { 'exact_match,strict-match': 0 } });
    expect(samples[3].metrics['exact_match,strict-match']).toBe(1);
    expect(readFileSync(join(dir, 'a/summary.md'), 'utf8')).toContain('| gsm8k_zeroshot | ');
  });

  it('reuses cached answers for an unchanged model, and asks again for a changed one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-eval-'));
    const first = await evaluateServer(dir, 'a', [1]);
    expect(first.server.hits('/v1/chat/completions')).toHaveLength(10);
    const again = await evaluateServer(dir, 'b', [1]);
    expect(again.results[0].cached).toBe(10);
    expect(again.server.hits('/v1/chat/completions')).toHaveLength(0);
    const changed = await evaluateServer(dir, 'c', [1, 2]);
    expect(changed.results[0].cached).toBe(0);
  });

  it('compare exits 1 when B is worse than A beyond the threshold, 0 otherwise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-eval-'));
    await evaluateServer(dir, 'good', [1]); // 90%
    await evaluateServer(dir, 'worse', [1, 2, 3, 4]); // 60%
    const io = { stdout: { write: () => true }, stderr: { write: () => true } };
    const run = (a: string, b: string, gate: { maxDrop?: number; maxDropStderr?: number }) =>
      compareCommand({ a: join(dir, a), b: join(dir, b), ...gate, json: false }, io);
    expect(await run('good', 'worse', { maxDrop: 0.2 })).toBe(1);
    expect(await run('good', 'worse', { maxDrop: 0.31 })).toBe(0);
    expect(await run('worse', 'good', { maxDrop: 0 })).toBe(0);
    // se: sqrt(.9*.1/9) = 0.1 and sqrt(.6*.4/9) = 0.163: combined 0.191; a 0.3 drop is 1.57 of them.
    expect(await run('good', 'worse', { maxDropStderr: 1.5 })).toBe(1);
    expect(await run('good', 'worse', { maxDropStderr: 1.6 })).toBe(0);
    let json = '';
    await compareCommand({ a: join(dir, 'good'), b: join(dir, 'worse'), maxDrop: 0.2, json: true }, { ...io, stdout: { write: (text: string) => ((json += text), true) } });
    expect(JSON.parse(json)).toMatchObject({ regressed: true, rows: [{ suite: 'gsm8k_zeroshot', primary: false }, { metric: 'exact_match,flexible-extract', primary: true, regressed: true }] });
  });
});

describe('slm-train eval', () => {
  it('evaluates a served model from the command line and prints the results as JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-eval-cli-'));
    const server = await scriptedServer(new Set([0, 9]));
    let stdout = '';
    const io = { stdout: { write: (text: string) => ((stdout += text), true) }, stderr: { write: () => true } };
    const code = await runProgram(
      ['eval', '--provider', 'openai', '--endpoint', `${server.url}/v1`, '--model', 'scripted', '--suite', 'gsm8k', '--data', writeProblems(dir),
        '--style', 'zero-shot', '--limit', '5', '--out', join(dir, 'out'), '--cache-dir', join(dir, 'cache'), '--backend', 'cpu', '--json'],
      io,
    );
    expect(code).toBe(0);
    const { outDir, results } = JSON.parse(stdout);
    expect(outDir).toBe(join(dir, 'out'));
    expect(results[0]).toMatchObject({ suite: 'gsm8k_zeroshot', n: 5, model: { name: 'openai:scripted' } });
    expect(results[0].metrics['exact_match,flexible-extract'].value).toBe(0.8);
  });
});

describe('MMLU log-likelihood scoring', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('equals an explicit computation of each choice\'s log-probability, and acc is its argmax', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-eval-mmlu-'));
    const tokenizer = createByteLevelTokenizer();
    const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, bosTokenId: tokenizer.bosId, eosTokenId: tokenizer.eosId });
    const model = CausalLM.init(config, { seed: 3, std: 0.5 });
    await writeHfModelDir(join(dir, 'model'), { config, tensors: model.hfTensors(), dtype: 'F32', tokenizerJson: tokenizer.toJSON() });
    const rows = ['What is 1+1?,1,2,3,4,B', 'Pick C,a,b,c,d,C', 'Color of sky?,red,blue,green,black,B'];
    const devRows = ['Dev q?,w,x,y,z,A'];
    for (const [split, lines] of [['test', rows], ['dev', devRows]] as const) {
      const folder = join(dir, 'mmlu', split);
      (await import('node:fs')).mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, `anatomy_${split}.csv`), `${lines.join('\n')}\n`);
    }
    const target = await localTarget(join(dir, 'model'));
    const [result] = await evaluate(target, [{ suite: 'mmlu', data: join(dir, 'mmlu'), shots: 1, limit: null }], {
      outDir: join(dir, 'out'), cacheFile: join(dir, 'cache.jsonl'), seed: 1, logger: silentLogger,
    });
    const samples = readFileSync(join(dir, 'out/mmlu.samples.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    let correct = 0;
    for (const [i, sample] of samples.entries()) {
      const explicit = [' A', ' B', ' C', ' D'].map((letter) => continuationLogprob(model, tokenizer, sample.prompt, letter));
      const reported = JSON.parse(sample.output) as number[];
      reported.forEach((value, j) => expect(value).toBeCloseTo(explicit[j], 4));
      const best = explicit.indexOf(Math.max(...explicit));
      expect(sample.metrics.acc).toBe(best === 'ABCD'.indexOf(rows[i].at(-1)!) ? 1 : 0);
      correct += sample.metrics.acc;
    }
    expect(result.metrics.acc.value).toBeCloseTo(correct / 3, 12);
    expect(result.groups.subject.anatomy.acc.n).toBe(3);
    target.dispose();
    model.dispose();
  });
});

/** log P(continuation | context) from one forward pass over the whole text, summed over the continuation's bytes. */
function continuationLogprob(model: CausalLM, tokenizer: ReturnType<typeof createByteLevelTokenizer>, context: string, continuation: string): number {
  const ids = tokenizer.encode(context + continuation, { addSpecialTokens: true });
  const start = tokenizer.encode(context, { addSpecialTokens: true }).length;
  return tf.tidy(() => {
    const logits = tf.logSoftmax(model.forward(tf.tensor2d(ids, [1, ids.length], 'int32'))).arraySync() as number[][][];
    let sum = 0;
    for (let i = start; i < ids.length; i++) sum += logits[0][i - 1][ids[i]];
    return sum;
  });
}
