import { mkdtempSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readTextExamples } from '../../datasets/text-examples.ts';
import { readExampleShard, type ExampleRow } from '../../src/formats/arrow-examples.ts';
import { parseRecipe, type Recipe } from '../../src/recipe/index.ts';
import type { GenerateSummary } from '../../src/run/data-summary.ts';
import { generateStage, GenerateError } from '../../src/stages/generate-stage.ts';
import { runPathsAt } from '../../src/run/layout.ts';
import { readMetrics } from '../../src/run/metrics.ts';
import { runRecipe } from '../../src/stages/run-recipe.ts';
import { silentLogger } from '../../src/util/progress.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { generateRecipeYaml, sumAnswer, writeSums } from '../helpers/sum-teacher.ts';
import { FakeTeacherServer, promptOf } from '../teachers/fake-teacher-server.ts';

const servers: FakeTeacherServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

function recipeIn(dir: string, yaml: string): Recipe {
  writeSums(dir);
  return parseRecipe(yaml, join(dir, 'recipe.yaml'), dir);
}

async function startServer(options: ConstructorParameters<typeof Object>[0] = {}): Promise<FakeTeacherServer> {
  const server = await FakeTeacherServer.start({ answer: sumAnswer, ...(options as object) });
  servers.push(server);
  return server;
}

async function generate(recipe: Recipe, options: Parameters<typeof generateStage>[3] = {}): Promise<GenerateSummary> {
  return generateStage(recipe, runPathsAt(join(recipe.outputDir, recipe.name)), silentLogger, options);
}

async function rowsOf(summary: GenerateSummary): Promise<ExampleRow[]> {
  const shards = await Promise.all(summary.shards.map(readExampleShard));
  return shards.flatMap((shard) => shard.rows);
}

describe('generate stage with an OpenAI-compatible teacher', () => {
  it('keeps only correct answers and stores each character token with its mapped top-k soft labels', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-generate-'));
    const server = await startServer();
    const summary = await generate(recipeIn(dir, generateRecipeYaml(server.url)));

    expect(summary.requests).toBe(12);
    expect(summary.queried).toBe(12);
    expect(summary.counts!.dropped.wrong_answer).toBe(4); // a = 2, 5, 8, 11
    expect(summary.examples).toBe(8);
    expect(summary.k).toBe(3);
    expect(summary.fallback).toBeNull();
    expect(summary.teacherRequests).toMatchObject({ requests: 12, retries: 0, failures: 0 });

    const tokenizer = createByteLevelTokenizer();
    const rows = await rowsOf(summary);
    const first = rows[0];
    const text = '0+0 is 0. #### 0';
    // The response is the answer's bytes, then EOS (the teacher stopped) with a one-hot soft label.
    expect([...first.responseIds]).toEqual([...tokenizer.encode(text, { addSpecialTokens: false }), tokenizer.eosId]);
    expect([...first.promptIds]).toEqual(tokenizer.encode('0+0=', { addSpecialTokens: true }));
    const k = 3;
    for (let t = 0; t < text.length; t++) {
      const ids = [...first.softLabels!.ids.subarray(t * k, t * k + k)];
      const idOf = (char: string) => tokenizer.encode(char, { addSpecialTokens: false })[0];
      expect(ids).toEqual([idOf(text[t]), idOf(text[t] === 'x' ? 'y' : 'x'), idOf('?')]);
      expect(first.softLabels!.logprobs[t * k]).toBeCloseTo(-0.1 - t / 1000, 6);
    }
    const last = text.length;
    expect(first.softLabels!.ids[last * k]).toBe(tokenizer.eosId);
    expect([...first.softLabels!.logprobs.subarray(last * k, last * k + k)]).toEqual([0, -Infinity, -Infinity]);
    expect(first.source).toBe(`${join(dir, 'sums.jsonl')}:1`);

    const written = JSON.parse(readFileSync(join(dir, 'runs/gen/data/summary.json'), 'utf8'));
    expect(written.examples).toBe(8);

    // The same examples in chat form, one per row, which data.format messages reads back.
    const lines = readFileSync(join(dir, 'runs/gen/data/conversations.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(lines).toHaveLength(8);
    expect(lines[0]).toEqual({ messages: [{ role: 'user', content: '0+0=' }, { role: 'assistant', content: text }], source: first.source });
    expect(lines.map((line) => line.source)).toEqual(rows.map((row) => row.source));
    const chat = await readTextExamples(join(dir, 'runs/gen/data/conversations.jsonl'), tokenizer);
    expect(chat.format).toBe('messages');
    expect(chat.examples).toHaveLength(8);
  });

  it('drops repeated answers to the same prompt and counts them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-generate-'));
    const server = await startServer();
    const summary = await generate(recipeIn(dir, generateRecipeYaml(server.url, '  samples_per_prompt: 3')));
    expect(summary.requests).toBe(36);
    expect(summary.counts!.duplicates).toBe(16); // 8 correct prompts x 2 repeats
    expect(summary.examples).toBe(8);
    // Each sample asks with its own seed, so a sampling teacher could answer differently.
    const seeds = new Set(server.hits('/v1/chat/completions').map((hit) => hit.body.seed));
    expect(seeds.size).toBe(36);
  });

  it('falls back to text only when the teacher tokens are not the student tokens, and says so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-generate-'));
    const server = await startServer({
      answer: (body: Record<string, unknown>) => {
        const chars = sumAnswer(body).map((t) => t.token).join('');
        // Two characters per token: the byte-level student has no such tokens.
        return (chars.match(/.{1,2}/g) ?? []).map((token) => ({ token, logprob: -0.5, top: [{ token, logprob: -0.5 }] }));
      },
    });
    const summary = await generate(recipeIn(dir, generateRecipeYaml(server.url)));
    expect(summary.k).toBe(0);
    expect(summary.fallback).toMatch(/vocabulary .* differs from the student's.*sequence-level/);
    const rows = await rowsOf(summary);
    expect(rows).toHaveLength(8);
    expect(rows.every((row) => row.softLabels === undefined)).toBe(true);
    const tokenizer = createByteLevelTokenizer();
    expect(tokenizer.decode([...rows[1].responseIds], { skipSpecialTokens: true })).toBe('1+2 is 3. #### 3');
  });

  it('retries a 500 and a dropped connection, and counts the retries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-generate-'));
    const server = await startServer();
    server.script('/v1/chat/completions', { kind: 'status', status: 500 }, { kind: 'drop' });
    const recipe = recipeIn(dir, generateRecipeYaml(server.url));
    const summary = await generate({ ...recipe, teacher: { ...recipe.teacher!, maxRetries: 3 } });
    expect(summary.examples).toBe(8);
    expect(summary.teacherRequests).toMatchObject({ requests: 14, retries: 2, failures: 0 });
  });

  it('retries 200 answers that are truncated, not JSON or without choices, and counts every attempt in the summary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-generate-'));
    const server = await startServer();
    server.script(
      '/v1/chat/completions',
      { kind: 'malformed' },
      { kind: 'status', status: 200, body: '{"id": "x", "object": "chat.completion"}' },
      { kind: 'status', status: 200, body: 'upstream busy' },
    );
    const recipe = recipeIn(dir, generateRecipeYaml(server.url));
    const summary = await generate({ ...recipe, teacher: { ...recipe.teacher!, maxRetries: 3 } });
    expect(summary.examples).toBe(8);
    expect(summary.teacherRequests).toMatchObject({ requests: 15, retries: 3, failures: 0 });
  });

  it('stops at the first 401 with one message naming the key setting, sending nothing more', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-generate-'));
    const server = await startServer();
    server.script('/v1/chat/completions', ...Array.from({ length: 20 }, () => ({ kind: 'status' as const, status: 401, body: '{"error": "invalid api key"}' })));
    const recipe = recipeIn(dir, generateRecipeYaml(server.url));
    const failed = generate({ ...recipe, teacher: { ...recipe.teacher!, concurrency: 1, maxRetries: 3 } });
    await expect(failed).rejects.toThrow(/refused the requests, so no more were sent: .*HTTP 401.*check the API key/);
    expect(server.hits('/v1/chat/completions')).toHaveLength(1);
  });

  it('fails naming the count when requests fail for good, keeping what was answered for the next run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-generate-'));
    const server = await startServer();
    server.script('/v1/chat/completions', { kind: 'status', status: 400 });
    const recipe = recipeIn(dir, generateRecipeYaml(server.url));
    await expect(generate(recipe)).rejects.toThrow(/1 of 12 teacher requests failed .*11 answers received are cached: run again/);
    const again = await generate(recipe);
    expect(again.cached).toBe(11);
    expect(again.queried).toBe(1);
    expect(server.hits('/v1/chat/completions')).toHaveLength(13);
    // The summary counts both attempts: 12 requests and a failure, then one more request.
    expect(again.attempts).toBe(2);
    expect(again.teacherRequests).toMatchObject({ requests: 13, failures: 1 });
  });
});

describe('generate stage with an Ollama teacher', () => {
  it('checks the server version, records the model digest in the manifest, and stores soft labels', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-generate-'));
    const server = await startServer();
    const yaml = generateRecipeYaml(server.url).replace(/provider: openai\n  model: tiny\n  endpoints: \[.*\]/, `provider: ollama\n  model: tiny\n  endpoints: [${server.url}]`);
    const summary = await generate(recipeIn(dir, yaml));
    expect(server.hits('/api/version')).toHaveLength(1);
    expect(server.hits('/api/generate')).toHaveLength(12);
    expect(summary.examples).toBe(8);
    const shard = await readExampleShard(summary.shards[0]);
    expect(shard.manifest.teacher).toEqual({ provider: 'ollama', model: 'tiny', digest: 'sha256-0123abcd' });
    expect(shard.manifest.k).toBe(3);
  });

  it('refuses a server too old to return logprobs, naming the version needed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slm-generate-'));
    const server = await startServer({ ollamaVersion: '0.11.4' });
    const yaml = generateRecipeYaml(server.url).replace(/provider: openai\n  model: tiny\n  endpoints: \[.*\]/, `provider: ollama\n  model: tiny\n  endpoints: [${server.url}]`);
    await expect(generate(recipeIn(dir, yaml))).rejects.toThrow(/version 0.11.4 is too old: token logprobs need Ollama 0.12.11/);
  });
});

describe('resuming an interrupted generate stage', () => {
  it('asks only for missing answers and ends with exactly the rows of an uninterrupted run', async () => {
    const server = await startServer();
    const whole = mkdtempSync(join(tmpdir(), 'slm-generate-'));
    const uninterrupted = await rowsOf(await generate(recipeIn(whole, generateRecipeYaml(server.url))));
    const askedBefore = server.hits('/v1/chat/completions').length;

    const dir = mkdtempSync(join(tmpdir(), 'slm-generate-'));
    const recipe = recipeIn(dir, generateRecipeYaml(server.url));
    await expect(generate(recipe, { stopAfter: 5 })).rejects.toThrow(GenerateError);
    const cacheFile = join(dir, 'runs/gen/data/cache/responses.jsonl');
    const cachedKeys = readFileSync(cacheFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line).key as string);
    expect(cachedKeys.length).toBeGreaterThanOrEqual(5);
    // A corrupt line in the middle is skipped, and reported; a kill in the middle of an append leaves a torn
    // last line: it is cut off. Every complete line, before and after the corrupt one, is kept.
    const lines = readFileSync(cacheFile, 'utf8').split('\n');
    writeFileSync(cacheFile, [lines[0], '{"key": "half', ...lines.slice(1)].join('\n'));
    appendFileSync(cacheFile, '{"key":"torn","value":{"te');
    const firstRunAsked = server.hits('/v1/chat/completions').length - askedBefore;

    const warnings: string[] = [];
    const resumed = await generateStage(recipe, runPathsAt(join(dir, 'runs/gen')), { ...silentLogger, warn: (message) => warnings.push(message) });
    expect(warnings).toEqual([`generate: ${cacheFile}:2: not a cache entry ({"key": ..., "value": ...}), skipped; its request will be asked again`]);
    expect(resumed.cached).toBe(cachedKeys.length);
    expect(resumed.queried).toBe(12 - cachedKeys.length);
    expect(server.hits('/v1/chat/completions').length - askedBefore - firstRunAsked).toBe(12 - cachedKeys.length);
    const rows = await rowsOf(resumed);
    expect(rows.map((row) => row.requestKey)).toEqual(uninterrupted.map((row) => row.requestKey));
    expect(rows.map((row) => [...row.responseIds])).toEqual(uninterrupted.map((row) => [...row.responseIds]));
    expect(new Set(rows.map((row) => row.requestKey)).size).toBe(rows.length);
    expect(readFileSync(cacheFile, 'utf8').trim().split('\n')).toHaveLength(13); // 12 answers and the corrupt line
  });

  it('asks again when the recipe changes what the teacher is asked', async () => {
    const server = await startServer();
    const dir = mkdtempSync(join(tmpdir(), 'slm-generate-'));
    await generate(recipeIn(dir, generateRecipeYaml(server.url)));
    const changed = await generate(recipeIn(dir, generateRecipeYaml(server.url, '  system: Answer briefly.')));
    expect(changed.cached).toBe(0);
    expect(changed.queried).toBe(12);
  });
});

/**
 * Four kinds of answer, by the request's seed: two wrong (the likelier one first) and two correct (the
 * likelier one last), each naming its kind in words so the pairs show which was taken.
 */
const KIND_WORDS = ['zero', 'one', 'two', 'three'];
const KIND_LOGPROB = [-1, -2, -0.5, -0.2];
function kindOf(body: Record<string, unknown>): number {
  return (body.seed as number) % 4;
}
function rankedAnswer(body: Record<string, unknown>) {
  const [a, b] = promptOf(body).replace('=', '').split('+').map(Number);
  const kind = kindOf(body);
  const result = a + b + (kind === 0 ? 1 : kind === 1 ? 2 : 0);
  return [...`kind ${KIND_WORDS[kind]}: #### ${result}`].map((token) => ({ token, logprob: KIND_LOGPROB[kind], top: [{ token, logprob: KIND_LOGPROB[kind] }] }));
}

describe('generate stage, mode preference', () => {
  async function pairsFrom(extra: string, answerCheck: boolean) {
    const dir = mkdtempSync(join(tmpdir(), 'slm-preference-'));
    const server = await startServer({ answer: rankedAnswer });
    let yaml = generateRecipeYaml(server.url, `  mode: preference\n  samples_per_prompt: 4\n${extra}`).replace('train:\n', 'train:\n  objective: dpo\n').replace('temperature: 0', 'temperature: 1');
    if (!answerCheck) yaml = yaml.replace('  filters:\n    answer: gsm8k\n', '');
    const summary = await generate(recipeIn(dir, yaml));
    writeFileSync(join(dir, 'recipe.yaml.used'), yaml);
    const records = readFileSync(join(dir, 'runs', 'gen', 'data', 'preferences.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    // What each prompt's four samples were, from the requests the server saw.
    const kinds = new Map<string, Set<number>>();
    for (const request of server.requests.filter((r) => r.path.endsWith('/completions'))) {
      const prompt = promptOf(request.body);
      kinds.set(prompt, (kinds.get(prompt) ?? new Set()).add(kindOf(request.body)));
    }
    return { summary, records, kinds, dir };
  }

  const kindIn = (text: string) => KIND_WORDS.indexOf(text.split(':')[0].replace('kind ', ''));

  it('with an answer check: the likeliest correct answer over the likeliest wrong one, for each prompt whose answers split', async () => {
    const { summary, records, kinds } = await pairsFrom('', true);
    const splitting = [...kinds.entries()].filter(([, seen]) => [...seen].some((k) => k >= 2) && [...seen].some((k) => k < 2));
    expect(splitting.length).toBeGreaterThan(0);
    expect(summary.pairs).toMatchObject({ pairs: splitting.length, unpaired: 12 - splitting.length });
    expect(summary.examples).toBe(splitting.length);
    expect(summary.shards).toEqual([]);
    for (const record of records) {
      const seen = kinds.get(record.prompt)!;
      expect(kindIn(record.chosen)).toBe(seen.has(3) ? 3 : 2);
      expect(kindIn(record.rejected)).toBe(seen.has(0) ? 0 : 1);
      expect(record.source).toMatch(/sums\.jsonl:\d+$/);
    }
  });

  it('feeds the train stage: DPO on the generated pairs, a share of them held out', async () => {
    const { summary, dir } = await pairsFrom('', true);
    const recipe = recipeIn(dir, readFileSync(join(dir, 'recipe.yaml.used'), 'utf8'));
    const result = await runRecipe(recipe, { logger: silentLogger, json: true, progressStream: { write: () => true }, only: 'train' });
    const [metrics] = readMetrics(join(result.runDir, 'metrics.jsonl'));
    expect(metrics['rewards/accuracies']).toBe(0); // the first step's policy is its reference
    expect(metrics.val_pairs).toBe(1); // 5% of the pairs, at least one
    const cached = JSON.parse(readFileSync(join(result.runDir, 'reference-logps.json'), 'utf8'));
    expect(cached.parts.train.logps).toHaveLength(2 * (summary.examples - 1));
  });

  it('without one: the teacher\'s likeliest answer over its least likely', async () => {
    const { records, kinds } = await pairsFrom('', false);
    const withTwoKinds = [...kinds.values()].filter((seen) => seen.size > 1);
    expect(records).toHaveLength(withTwoKinds.length);
    const likelihood = (kind: number) => KIND_LOGPROB[kind];
    for (const record of records) {
      const seen = [...kinds.get(record.prompt)!].sort((a, b) => likelihood(b) - likelihood(a));
      expect([kindIn(record.chosen), kindIn(record.rejected)]).toEqual([seen[0], seen.at(-1)]);
    }
  });
});
