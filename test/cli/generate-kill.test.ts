/** A generate run killed half way (SIGKILL, no chance to clean up) and started again. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readExampleShard } from '../../src/formats/arrow-examples.ts';
import { generateRecipeYaml, sumAnswer, writeSums } from '../helpers/sum-teacher.ts';
import { FakeTeacherServer } from '../teachers/fake-teacher-server.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const PROMPTS = 40;
const CHAT = '/v1/chat/completions';

const servers: FakeTeacherServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

function startGenerate(dir: string) {
  const child = spawn('node', [join(ROOT, 'bin/slm-train.js'), 'run', join(dir, 'recipe.yaml'), '--only', 'generate', '--json'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((done) =>
    child.on('exit', (code, signal) => done({ code, signal, stderr })),
  );
  return { child, exited };
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function prepare(url: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'slm-generate-kill-'));
  writeSums(dir, PROMPTS);
  writeFileSync(join(dir, 'recipe.yaml'), generateRecipeYaml(url));
  return dir;
}

async function requestKeys(dir: string): Promise<string[]> {
  const summary = JSON.parse(readFileSync(join(dir, 'runs/gen/data/summary.json'), 'utf8')) as { shards: string[] };
  const shards = await Promise.all(summary.shards.map(readExampleShard));
  return shards.flatMap((shard) => shard.rows.map((row) => row.requestKey));
}

function cachedKeys(dir: string): string[] {
  const text = readFileSync(join(dir, 'runs/gen/data/cache/responses.jsonl'), 'utf8');
  return text.split('\n').filter((line) => line.endsWith('}')).map((line) => JSON.parse(line).key as string);
}

describe('slm-train run --only generate, killed and restarted', () => {
  it('re-asks nothing that was answered and ends with the examples of an uninterrupted run', async () => {
    const server = await FakeTeacherServer.start({ answer: sumAnswer, delayMs: 40 });
    servers.push(server);

    const whole = prepare(server.url);
    const uninterrupted = await startGenerate(whole).exited;
    expect(uninterrupted.code, uninterrupted.stderr).toBe(0);
    const expectedKeys = await requestKeys(whole);
    expect(expectedKeys.length).toBeGreaterThan(20);

    const dir = prepare(server.url);
    const before = server.hits(CHAT).length;
    const first = startGenerate(dir);
    await until(() => server.hits(CHAT).length - before >= PROMPTS / 2, 60_000);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    const answeredBeforeKill = cachedKeys(dir);
    expect(answeredBeforeKill.length).toBeGreaterThan(0);
    expect(answeredBeforeKill.length).toBeLessThan(PROMPTS);

    const askedBeforeRestart = server.hits(CHAT).length;
    const second = await startGenerate(dir).exited;
    expect(second.code, second.stderr).toBe(0);
    expect(server.hits(CHAT).length - askedBeforeRestart).toBe(PROMPTS - answeredBeforeKill.length);
    expect(await requestKeys(dir)).toEqual(expectedKeys);
    const allCached = cachedKeys(dir);
    expect(allCached).toHaveLength(PROMPTS);
    expect(new Set(allCached).size).toBe(PROMPTS);
  }, 120_000);
});
