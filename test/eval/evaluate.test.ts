import * as tf from '@tensorflow/tfjs-core';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { compareCommand } from '../../src/cli/commands/compare.ts';
import { runProgram } from '../../src/cli/program.ts';
import { evaluate } from '../../src/eval/evaluate.ts';
import { localTarget, serverTarget, type ServedApi, type ServerTargetOptions } from '../../src/eval/targets.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { silentLogger } from '../../src/util/progress.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { FakeTeacherServer, promptOf, type FakeServerOptions } from '../teachers/fake-teacher-server.ts';

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

async function scriptedServer(wrongFor: ReadonlySet<number>, options: FakeServerOptions = {}): Promise<FakeTeacherServer> {
  const server = await FakeTeacherServer.start({
    ...options,
    answer: (body) => {
      const prompt = promptOf(body);
      const question = /What is (\d+) \+ 10\?/.exec(prompt);
      if (!question) return [{ token: 'ok', logprob: -0.1, top: [] }]; // a probe
      const a = Number(question[1]);
      const sum = a + 10 + (wrongFor.has(a) ? 1 : 0);
      return [{ token: ` ${a} + 10 = ${sum}\n#### ${sum}\n\nQuestion: next`, logprob: -0.1, top: [] }];
    },
  });
  servers.push(server);
  return server;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Text completions asked of `server` (not its scoring probes, which echo). */
function generations(server: FakeTeacherServer) {
  return server.hits('/v1/completions').filter((request) => !request.body.echo);
}

/** A scripted server that names its model by the set of wrong answers, as a fingerprint would. */
async function evaluateServer(dir: string, out: string, wrongFor: number[]) {
  const server = await scriptedServer(new Set(wrongFor), { fingerprint: `fp-${wrongFor.join('-')}` });
  return { results: await evaluateOn(server, dir, out), server };
}

async function evaluateOn(server: FakeTeacherServer, dir: string, out: string, options: ServerTargetOptions & { model?: string } = {}) {
  const target = await serverTarget({
    provider: 'openai', model: options.model ?? 'tiny', endpoints: [`${server.url}/v1`],
    concurrency: 2, requestsPerMinute: null, timeoutS: 10, maxRetries: 0,
  }, options);
  try {
    return await evaluate(target, [{ suite: 'gsm8k', data: writeProblems(dir), style: 'zero-shot', limit: null }], {
      outDir: join(dir, out), cacheFile: join(dir, 'cache.jsonl'), seed: 1, logger: silentLogger,
    });
  } finally {
    target.dispose();
  }
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

    // lm-evaluation-harness's layout, with its keys and names.
    const written = JSON.parse(readFileSync(join(dir, 'a/gsm8k_zeroshot.json'), 'utf8'));
    expect(written.results.gsm8k_zeroshot).toEqual({
      alias: 'gsm8k_zeroshot',
      'exact_match,strict-match': 0.7,
      'exact_match_stderr,strict-match': metric.stderr,
      'exact_match,flexible-extract': 0.7,
      'exact_match_stderr,flexible-extract': metric.stderr,
    });
    expect(written).toMatchObject({
      versions: { gsm8k_zeroshot: '2' },
      'n-shot': { gsm8k_zeroshot: 0 },
      'n-samples': { gsm8k_zeroshot: { original: 10, effective: 10 } },
      higher_is_better: { gsm8k_zeroshot: { exact_match: true } },
      configs: { gsm8k_zeroshot: { output_type: 'generate_until', generation_kwargs: { until: ['Question:', '</s>', '<|im_end|>'], max_gen_toks: 256 } } },
      config: { model_args: 'pretrained=openai:tiny', fewshot_seed: 1 },
      'slm-train': { suite: 'gsm8k_zeroshot', promptStyle: 'zero-shot', seed: 1, n: 10 },
    });
    expect(typeof written.date).toBe('number');
    const samples = readFileSync(join(dir, 'a/gsm8k_zeroshot.samples.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(samples).toHaveLength(20); // one per document and filter
    const prompt = 'Question: What is 2 + 10?\nAnswer:';
    const doc = { question: 'What is 2 + 10?', answer: '2 + 10 = 12\n#### 12' };
    expect(samples[4]).toEqual({
      doc_id: 2, doc, target: doc.answer,
      arguments: [[prompt, { until: ['Question:', '</s>', '<|im_end|>'], do_sample: false, temperature: 0, max_gen_toks: 256 }]],
      resps: [[' 2 + 10 = 13\n#### 13\n\n']], filtered_resps: ['13'], filter: 'strict-match', metrics: ['exact_match'],
      doc_hash: sha256(JSON.stringify(doc, null, 2)), prompt_hash: sha256(prompt), target_hash: sha256(doc.answer),
      exact_match: 0, id: samples[4].id,
    });
    expect(samples[7]).toMatchObject({ doc_id: 3, filter: 'flexible-extract', exact_match: 1 });
    expect(readFileSync(join(dir, 'a/summary.md'), 'utf8')).toContain('| gsm8k_zeroshot | ');
  });

  it('compare exits 2, not 1, when it cannot compare: a missing result, no suite in common, an unknown metric', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-eval-'));
    await evaluateServer(dir, 'good', [1]);
    const other = join(dir, 'other');
    mkdirSync(other);
    const result = JSON.parse(readFileSync(join(dir, 'good/gsm8k_zeroshot.json'), 'utf8'));
    writeFileSync(join(other, 'gsm8k_cot.json'), JSON.stringify({ ...result, 'slm-train': { ...result['slm-train'], suite: 'gsm8k_cot' } }));
    const quiet = { stdout: { write: () => true }, stderr: { write: () => true } };
    const run = (argv: string[]) => runProgram(['compare', ...argv], quiet).catch((error: unknown) => error);
    const missing = await run([join(dir, 'good'), join(dir, 'absent')]);
    expect(missing).toMatchObject({ exitCode: 2 });
    const disjoint = await run([join(dir, 'good'), other]);
    expect(disjoint).toMatchObject({ exitCode: 2, message: expect.stringMatching(/no suite and metric in common/) });
    const unknown = await run([join(dir, 'good'), join(dir, 'good'), '--metric', 'acc']);
    expect(unknown).toMatchObject({ exitCode: 2, message: expect.stringMatching(/--metric acc: in no suite/) });
    expect(await run([join(dir, 'good'), join(dir, 'good')])).toBe(0);
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
    // Gating on a metric by name: strict-match dropped 0.3 as well.
    expect(await compareCommand({ a: join(dir, 'good'), b: join(dir, 'worse'), maxDrop: 0.31, metric: ['exact_match,strict-match'], json: false }, io)).toBe(0);
    expect(await compareCommand({ a: join(dir, 'good'), b: join(dir, 'worse'), maxDrop: 0.2, metric: ['exact_match,strict-match'], json: false }, io)).toBe(1);
    let json = '';
    await compareCommand({ a: join(dir, 'good'), b: join(dir, 'worse'), maxDrop: 0.2, json: true }, { ...io, stdout: { write: (text: string) => ((json += text), true) } });
    expect(JSON.parse(json)).toMatchObject({ regressed: true, rows: [{ suite: 'gsm8k_zeroshot', primary: false }, { metric: 'exact_match,flexible-extract', primary: true, regressed: true }] });
  });
});

describe('served models', () => {
  it('never reuses answers of a server that gives no model identity, unless asked to by name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-eval-served-'));
    const wrong = new Set<number>();
    const server = await scriptedServer(wrong);
    const warnings: string[] = [];
    const logger = { warn: (message: string) => warnings.push(message) };
    expect((await evaluateOn(server, dir, 'a', { logger }))[0].metrics['exact_match,flexible-extract'].value).toBe(1);
    wrong.add(3); // the same name now answers 10% wrong
    const [second] = await evaluateOn(server, dir, 'b', { logger });
    expect(second.cached).toBe(0);
    expect(second.metrics['exact_match,flexible-extract'].value).toBe(0.9);
    expect(warnings[0]).toMatch(/no model identity.*not reused.*--cache-by-name/);
    await evaluateOn(server, dir, 'c', { cacheByName: true });
    const [byName] = await evaluateOn(server, dir, 'd', { cacheByName: true });
    expect(byName.cached).toBe(10);
  });

  it('keys answers by the server\'s system_fingerprint and model entry, and by endpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-eval-served-'));
    const wrong = new Set<number>();
    const server = await scriptedServer(wrong, { fingerprint: 'fp-a' });
    await evaluateOn(server, dir, 'a');
    expect((await evaluateOn(server, dir, 'b'))[0].cached).toBe(10);
    server.options.fingerprint = 'fp-b';
    wrong.add(3);
    const [changed] = await evaluateOn(server, dir, 'c');
    expect(changed.cached).toBe(0);
    expect(changed.metrics['exact_match,flexible-extract'].value).toBe(0.9);

    const vllm = await scriptedServer(new Set(), { modelDetails: { root: '/models/tiny-v1', max_model_len: 2048 } });
    await evaluateOn(vllm, dir, 'd');
    expect((await evaluateOn(vllm, dir, 'e'))[0].cached).toBe(10);
    vllm.options.modelDetails = { root: '/models/tiny-v2', max_model_len: 2048 };
    expect((await evaluateOn(vllm, dir, 'f'))[0].cached).toBe(0);
    const elsewhere = await scriptedServer(new Set(), { fingerprint: 'fp-b' });
    expect((await evaluateOn(elsewhere, dir, 'g'))[0].cached).toBe(0);
  });

  it('sends raw text to /v1/completions by default, a user turn with --api chat, and needs no logprobs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-eval-served-'));
    const server = await scriptedServer(new Set([4]), { logprobs: false });
    const [raw] = await evaluateOn(server, dir, 'a');
    expect(raw.metrics['exact_match,flexible-extract'].value).toBe(0.9);
    const sent = generations(server)[0].body;
    expect(sent).toMatchObject({ prompt: 'Question: What is 0 + 10?\nAnswer:', temperature: 0, stop: ['Question:', '</s>', '<|im_end|>'] });
    expect(sent.logprobs).toBeUndefined();
    const [chat] = await evaluateOn(server, dir, 'b', { api: 'chat' });
    expect(chat.metrics['exact_match,flexible-extract'].value).toBe(0.9);
    const chatSent = server.hits('/v1/chat/completions').at(-1)!.body;
    expect(chatSent.messages).toEqual([{ role: 'user', content: 'Question: What is 9 + 10?\nAnswer:' }]);
    expect(chatSent.logprobs).toBeUndefined();
  });

  it('prompts Ollama raw (or as a chat turn) and keys its answers by the weights digest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-eval-ollama-'));
    const server = await scriptedServer(new Set([2]), { logprobs: false });
    const evaluateOllama = async (out: string, api?: ServedApi) => {
      const target = await serverTarget({ provider: 'ollama', model: 'tiny', endpoints: [server.url], concurrency: 2, requestsPerMinute: null, timeoutS: 10, maxRetries: 0 }, { api });
      try {
        return (await evaluate(target, [{ suite: 'gsm8k', data: writeProblems(dir), style: 'zero-shot', limit: null }], { outDir: join(dir, out), cacheFile: join(dir, 'cache.jsonl'), seed: 1, logger: silentLogger }))[0];
      } finally {
        target.dispose();
      }
    };
    expect((await evaluateOllama('a')).metrics['exact_match,flexible-extract'].value).toBe(0.9);
    expect(server.hits('/api/generate')[0].body).toMatchObject({ raw: true, prompt: 'Question: What is 0 + 10?\nAnswer:' });
    expect(server.hits('/api/generate')[0].body.logprobs).toBeUndefined();
    expect((await evaluateOllama('b')).cached).toBe(10);
    expect((await evaluateOllama('c', 'chat')).cached).toBe(0);
    expect(server.hits('/api/chat')).toHaveLength(10);
  });

  it('scores MMLU choices through /v1/completions echo where the server has it, and says what to do where not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-eval-served-'));
    writeMmlu(dir, ['What is 1+1?,1,2,3,4,B', 'Pick C,a,b,c,d,C']);
    const run = async (options: FakeServerOptions, out: string, api?: ServedApi, mode?: 'loglikelihood') => {
      const spec = { suite: 'mmlu' as const, data: join(dir, 'mmlu'), shots: 0, limit: null, mode };
      const server = await scriptedServer(new Set(), options);
      const target = await serverTarget({ provider: 'openai', model: 'tiny', endpoints: [`${server.url}/v1`], concurrency: 2, requestsPerMinute: null, timeoutS: 10, maxRetries: 0 }, { api });
      try {
        return await evaluate(target, [spec], { outDir: join(dir, out), seed: 1, logger: silentLogger });
      } finally {
        target.dispose();
      }
    };
    await run({ scoring: true }, 'scored');
    const samples = readFileSync(join(dir, 'scored/mmlu.samples.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    for (const sample of samples) {
      // The fake scores the i-th whitespace-led word -(i+1): each letter is the word after the prompt's last.
      const words = sample.arguments[0][0].match(/\s*\S+/g).length;
      expect(sample.resps).toEqual([0, 1, 2, 3].map(() => [[-(words + 1), true]]));
    }
    expect((await run({ scoring: false }, 'unscored'))[0].promptStyle).toBe('0-shot-generate');
    await expect(run({ scoring: false }, 'unscored', 'completions', 'loglikelihood')).rejects.toThrow(/prompt logprobs.*\/v1\/completions with echo.*--mode generate/);
    await expect(run({ scoring: true }, 'chat', 'chat', 'loglikelihood')).rejects.toThrow(/not --api chat/);
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
    writeMmlu(dir, rows);
    const target = await localTarget(join(dir, 'model'));
    const [result] = await evaluate(target, [{ suite: 'mmlu', data: join(dir, 'mmlu'), shots: 1, limit: null }], {
      outDir: join(dir, 'out'), cacheFile: join(dir, 'cache.jsonl'), seed: 1, logger: silentLogger,
    });
    const samples = readFileSync(join(dir, 'out/mmlu.samples.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    let correct = 0;
    for (const [i, sample] of samples.entries()) {
      const explicit = [' A', ' B', ' C', ' D'].map((letter) => continuationLogprob(model, tokenizer, sample.arguments[0][0], letter));
      expect(sample.arguments.map((pair: string[]) => pair[1])).toEqual([' A', ' B', ' C', ' D']);
      const reported: number[] = sample.filtered_resps.map(([logprob]: [number, boolean]) => logprob);
      reported.forEach((value, j) => expect(value).toBeCloseTo(explicit[j], 4));
      const best = explicit.indexOf(Math.max(...explicit));
      expect(sample.acc).toBe(best === 'ABCD'.indexOf(rows[i].at(-1)!) ? 1 : 0);
      correct += sample.acc;
    }
    expect(result.metrics.acc.value).toBeCloseTo(correct / 3, 12);
    expect(result.groups.subject.anatomy.acc.n).toBe(3);
    target.dispose();
    model.dispose();
  });
});

/** An MMLU folder of one subject (anatomy): `rows` as its test split, one dev question. */
function writeMmlu(dir: string, rows: string[]): void {
  for (const [split, lines] of [['test', rows], ['dev', ['Dev q?,w,x,y,z,A']]] as const) {
    const folder = join(dir, 'mmlu', split);
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, `anatomy_${split}.csv`), `${lines.join('\n')}\n`);
  }
}

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
