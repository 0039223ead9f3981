/**
 * The generate stage: seed prompts -> teacher answers with top-k logprobs -> filtered, de-duplicated
 * examples in the student's ids -> Arrow shards in <run>/data/ and a summary.
 *
 * Every answer is cached under its request key as soon as it arrives (response-cache.ts), and the shards
 * are rebuilt from the cache in request order once every answer is in. So a killed run, started again,
 * asks only for what is missing and ends with exactly the examples an uninterrupted run would have.
 */
import { rm } from 'node:fs/promises';
import { promptEncoder, type PromptEncoder } from '../../datasets/prompt-ids.ts';
import { readSeedPrompts, type SeedPrompt } from '../../datasets/prompts.ts';
import { responseFilter } from './generate/response-filters.ts';
import { EXAMPLE_FORMAT_VERSION, writeExampleShard, type ExampleManifest, type ExampleRowInput } from '../formats/arrow-examples.ts';
import { modelDigest } from '../model-files/digest.ts';
import { loadModelTokenizer } from '../model-files/load.ts';
import type { GenerateSpec, Recipe, TeacherSpec } from '../recipe/index.ts';
import { createTeacher, type CreateTeacherOptions, type TeacherHandle } from '../teachers/create.ts';
import { TeacherError, isAuthFailure } from '../teachers/errors.ts';
import type { Sample } from '../teachers/teacher.ts';
import { TeacherVocabMap } from '../teachers/vocab-map.ts';
import { tokenizerHash } from '../tokenizer/hash.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.ts';
import { SlmError } from '../util/errors.ts';
import type { GenerateSummary, PairCounts, RowCounts, TeacherCounters, TeacherIdentity } from '../run/data-summary.ts';
import { buildRows } from './generate/example-rows.ts';
import { buildPreferencePairs } from './generate/preference-rows.ts';
import { generateJobs, labelJobs, type TeacherJob } from './generate/teacher-jobs.ts';
import type { RunPaths } from '../run/layout.ts';
import type { Logger } from '../util/progress.ts';
import { ResponseCache } from '../run/response-cache.ts';
import { recordAttempt, totalRequests, type GenerateAttempt } from './generate/attempts.ts';
import { loadStudentTokenizer } from './student.ts';

/** Requests a local teacher generates together. */
const LOCAL_BATCH = 16;

export class GenerateError extends SlmError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { code: 'ERR_GENERATE', ...options });
  }
}

/** Labelled answers stored per key: what the teacher said, or how it scored a given response. */
type CachedAnswer = Sample;

export interface GenerateStageOptions extends Pick<CreateTeacherOptions, 'env'> {
  /** Stops asking the teacher after this many new answers (tests use it to simulate an interrupted run). */
  stopAfter?: number;
}

/** Runs one attempt at the stage and records it (generate/attempts.ts), whether it succeeds or fails. */
export async function generateStage(recipe: Recipe, paths: RunPaths, logger: Logger, options: GenerateStageOptions = {}): Promise<GenerateSummary> {
  const { generate: spec, teacher: teacherSpec } = recipe;
  if (!spec || !teacherSpec) throw new GenerateError('the recipe has no `generate` and `teacher` sections');
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const teacher = new LazyTeacher(teacherSpec, logger, options);
  let recorded = false;
  const record = (outcome: GenerateAttempt['outcome']) => {
    recorded = true;
    return recordAttempt(paths.generateAttempts, { started: startedAt, seconds: (performance.now() - started) / 1000, outcome, teacherRequests: teacher.counters() });
  };
  try {
    return await generateData({ recipe, spec, teacherSpec, paths, logger, teacher, options }, () => record('ok'));
  } catch (error) {
    if (!recorded) await record('failed');
    throw error;
  } finally {
    teacher.dispose();
  }
}

interface StageContext {
  recipe: Recipe;
  spec: GenerateSpec;
  teacherSpec: TeacherSpec;
  paths: RunPaths;
  logger: Logger;
  teacher: LazyTeacher;
  options: GenerateStageOptions;
}

async function generateData({ recipe, spec, teacherSpec, paths, logger, teacher, options }: StageContext, recordSuccess: () => Promise<GenerateAttempt[]>): Promise<GenerateSummary> {
  const student = await loadStudentTokenizer(recipe.student);
  const encodePrompt = promptEncoder(student.tokenizer, student.chatTemplate, 'the student');
  const prompts = await readSeedPrompts({
    ...spec,
    responseField: spec.mode === 'label' ? spec.responseField : undefined,
  });
  const identity = await teacher.identity();
  const jobs =
    spec.mode !== 'label'
      ? generateJobs(prompts, spec, identity, recipe.seed)
      : labelJobs(await labelSequences(prompts, spec, teacherSpec, student.tokenizer, await teacher.localPromptEncoder()), spec.k, identity);
  const cache = await ResponseCache.open<CachedAnswer>(paths.responseCache);
  for (const line of cache.skippedLines) logger.warn(`generate: ${line}; its request will be asked again`);
  const todo = jobs.filter((job) => !cache.has(job.key));
  logger.info(`generate: ${prompts.length} prompts, ${jobs.length} teacher requests, ${jobs.length - todo.length} already answered`);
  await askTeacher(todo, teacher, cache, logger, options.stopAfter);
  const answers = jobs.map((job) => cache.get(job.key)!);
  const sharedSummary = { mode: spec.mode, teacher: identity, prompts: prompts.length, requests: jobs.length, cached: jobs.length - todo.length, queried: todo.length };
  if (spec.mode === 'preference') {
    const chat = student.chatTemplate !== null;
    const { records, counts } = buildPreferencePairs(jobs, answers, prompts, { filter: responseFilter({ ...spec.filters, answer: 'none' }), answer: spec.filters.answer, system: spec.system, chat });
    if (records.length === 0) throw new GenerateError(`no preference pairs: ${describePairs(counts)}`);
    await writeFileAtomic(paths.preferences, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    const attempts = await recordSuccess();
    const summary: GenerateSummary = { ...sharedSummary, ...attemptTotals(attempts), examples: records.length, counts: null, pairs: counts, k: 0, fallback: null, shards: [] };
    await writeJsonAtomic(paths.dataSummary, summary);
    await removeStaleShards(paths, 0);
    logger.info(`generate: ${describePairs(counts)}, written to ${paths.preferences}`);
    return summary;
  }
  const softLabels = chooseSoftLabels(spec, answers, student.tokenizer, identity, await teacher.sharesTokenizer(student.tokenizer));
  if (softLabels.fallback) logger.warn(`generate: ${softLabels.fallback}`);
  const { rows, conversations, counts } = buildRows(jobs, answers, prompts, {
    tokenizer: student.tokenizer,
    encodePrompt,
    system: spec.system,
    softLabels: softLabels.map && { k: spec.k, vocab: softLabels.map },
    filter: responseFilter(spec.filters),
    dedup: spec.dedup,
  });
  if (rows.length === 0) throw new GenerateError(`no examples left after the filters: ${describeDrops(counts)}`);
  const manifest = exampleManifest(spec, identity, softLabels.map ? spec.k : 0, student.tokenizer);
  const shards = await writeShards(paths, rows, manifest, spec.shardRows);
  await writeFileAtomic(paths.conversations, conversations.map((messages, i) => `${JSON.stringify({ messages, source: rows[i].source })}\n`).join(''));
  const attempts = await recordSuccess();
  const summary: GenerateSummary = { ...sharedSummary, ...attemptTotals(attempts), examples: rows.length, counts, pairs: null, k: manifest.k, fallback: softLabels.fallback, shards };
  await writeJsonAtomic(paths.dataSummary, summary);
  await removeStaleShards(paths, shards.length);
  logger.info(`generate: ${rows.length} examples (${describeDrops(counts)}), ${manifest.k > 0 ? `top-${manifest.k} soft labels` : 'text only'}`);
  return summary;
}

function attemptTotals(attempts: GenerateAttempt[]): Pick<GenerateSummary, 'teacherRequests' | 'attempts' | 'seconds'> {
  return { teacherRequests: totalRequests(attempts), attempts: attempts.length, seconds: attempts.reduce((total, attempt) => total + attempt.seconds, 0) };
}

/**
 * The teacher is loaded (a local model) or contacted (a server) only when it has to answer something:
 * its identity, which the cache keys need, comes from the model file's digest or the server's listing.
 */
class LazyTeacher {
  private handle: Promise<TeacherHandle> | undefined;
  private created: TeacherHandle | undefined;
  private localTokenizer: Promise<{ tokenizer: Tokenizer | null; chatTemplate: string | null }> | undefined;

  constructor(
    private readonly spec: TeacherSpec,
    private readonly logger: Logger,
    private readonly options: GenerateStageOptions,
  ) {}

  async identity(): Promise<TeacherIdentity> {
    const { provider, model } = this.spec;
    if (provider === 'local') return { provider, model, digest: await modelDigest(model) };
    // OpenAI-compatible servers publish no weights digest (and info() would probe scoring for nothing).
    if (provider === 'openai') return { provider, model, digest: null };
    const info = await (await this.live()).teacher.info();
    return { provider, model, digest: info.digest ?? null };
  }

  /** The teacher itself, created on first use. */
  async live(): Promise<TeacherHandle> {
    this.handle ??= createTeacher(this.spec, { ...this.options, logger: this.logger });
    this.created = await this.handle;
    return this.created;
  }

  /** Whether the teacher's ids are the student's (a local teacher with the same tokenizer). */
  async sharesTokenizer(student: Tokenizer): Promise<boolean> {
    if (this.spec.provider !== 'local') return false;
    const { tokenizer } = await this.localTokenizerFiles();
    return tokenizer !== null && tokenizerHash(tokenizer) === tokenizerHash(student);
  }

  async localPromptEncoder(): Promise<{ tokenizer: Tokenizer; encodePrompt: PromptEncoder } | null> {
    if (this.spec.provider !== 'local') return null;
    const { tokenizer, chatTemplate } = await this.localTokenizerFiles();
    return tokenizer && { tokenizer, encodePrompt: promptEncoder(tokenizer, chatTemplate, `teacher ${this.spec.model}`) };
  }

  counters(): TeacherCounters | null {
    const counters = this.created?.counters() ?? null;
    return counters && { requests: counters.requests, retries: counters.retries, failures: counters.failures, timeouts: counters.timeouts, tokens: counters.tokens };
  }

  dispose(): void {
    this.created?.dispose();
  }

  private localTokenizerFiles() {
    this.localTokenizer ??= loadModelTokenizer(this.spec.model);
    return this.localTokenizer;
  }
}

/** Label mode: prompt + response in the teacher's ids, which must be the student's too. */
async function labelSequences(
  prompts: readonly SeedPrompt[],
  spec: GenerateSpec,
  teacherSpec: TeacherSpec,
  student: Tokenizer,
  teacher: { tokenizer: Tokenizer; encodePrompt: PromptEncoder } | null,
): Promise<{ promptIds: number[]; responseIds: number[] }[]> {
  if (!teacher || tokenizerHash(teacher.tokenizer) !== tokenizerHash(student)) {
    throw new GenerateError(
      `generate.mode label: the teacher ${teacherSpec.model} and the student must share a tokenizer, so that the teacher's distributions are over the student's ids; use mode generate`,
    );
  }
  const eos = student.eosId;
  return prompts.map((prompt) => {
    const responseIds = student.encode(prompt.response ?? '', { addSpecialTokens: false });
    return {
      promptIds: teacher.encodePrompt({ prompt: prompt.text, ...(spec.system !== null && { system: spec.system }) }),
      responseIds: eos === null ? responseIds : [...responseIds, eos],
    };
  });
}

/** Runs the jobs with the teacher's concurrency, caching each answer as it arrives; counts failures. */
async function askTeacher(
  jobs: readonly TeacherJob[],
  teacher: LazyTeacher,
  cache: ResponseCache<CachedAnswer>,
  logger: Logger,
  stopAfter = Infinity,
): Promise<void> {
  if (jobs.length === 0) return;
  const handle = await teacher.live();
  const failures: { job: TeacherJob; error: unknown }[] = [];
  let refused: TeacherError | undefined;
  let next = 0;
  let answered = 0;
  // A local model answers several requests per batched forward pass; a server takes them one per request.
  const perCall = handle.local ? LOCAL_BATCH : 1;
  const worker = async () => {
    while (next < jobs.length && answered < stopAfter && !refused) {
      const batch = jobs.slice(next, Math.min(next + perCall, jobs.length, next + stopAfter - answered));
      next += batch.length;
      try {
        const answers = await answerAll(handle, batch);
        for (const [i, job] of batch.entries()) await cache.put(job.key, answers[i]);
        answered += batch.length;
        logger.info(`generate: ${answered}/${jobs.length} answers`);
      } catch (error) {
        if (!(error instanceof TeacherError)) throw error;
        if (isAuthFailure(error)) refused ??= error;
        failures.push(...batch.map((job) => ({ job, error })));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(handle.concurrency, jobs.length) }, worker));
  if (refused) {
    throw new GenerateError(`the teacher refused the requests, so no more were sent: ${refused.message}`, { cause: refused });
  }
  if (answered < jobs.length && failures.length === 0) {
    throw new GenerateError(`stopped after ${answered} of ${jobs.length} answers; they are cached: run again to ask for the rest`);
  }
  if (failures.length > 0) {
    const first = failures[0].error as Error;
    throw new GenerateError(
      `${failures.length} of ${jobs.length} teacher requests failed (first: ${first.message}); the ${answered} answers received are cached: run again to ask only for the missing ones`,
      { cause: first },
    );
  }
}

async function answerAll(handle: TeacherHandle, jobs: readonly TeacherJob[]): Promise<CachedAnswer[]> {
  const requests = jobs.flatMap((job) => (job.kind === 'generate' ? [job.request] : []));
  if (requests.length === jobs.length) return handle.teacher.generate(requests);
  const answers: CachedAnswer[] = [];
  for (const job of jobs) answers.push(await answer(handle, job));
  return answers;
}

async function answer(handle: TeacherHandle, job: TeacherJob): Promise<CachedAnswer> {
  if (job.kind === 'generate') return (await handle.teacher.generate([job.request]))[0];
  const local = handle.local!;
  const response = (await local.scoreIds(job.ids, job.k)).slice(job.responseStart);
  const text = local.tokenizer.decode(job.ids.slice(job.responseStart), { skipSpecialTokens: true });
  return { text, tokens: response, finishReason: 'stop' };
}

/**
 * Soft labels are stored only when the teacher's tokens are the student's: shared ids (a local teacher with
 * the student's tokenizer), or nearly every token string mapping onto a student token. Otherwise the data
 * falls back to sequence-level distillation (the teacher's text alone), and says so.
 */
function chooseSoftLabels(
  spec: GenerateSpec,
  answers: readonly Sample[],
  student: Tokenizer,
  teacher: TeacherIdentity,
  sharedTokenizer: boolean,
): { map: TeacherVocabMap | null; fallback: string | null } {
  if (spec.k === 0) return { map: null, fallback: null };
  const map = TeacherVocabMap.forStudent(student, { sharedTokenizer });
  if (sharedTokenizer) return { map, fallback: null };
  const agreement = map.vocabularyAgreement(answers.map((a) => a.tokens));
  if (agreement.compatible) return { map, fallback: null };
  return {
    map: null,
    fallback: `the teacher's vocabulary (${teacher.provider} ${teacher.model}) differs from the student's: ${agreement.message}; storing the teacher's text only, for sequence-level distillation`,
  };
}

function exampleManifest(spec: GenerateSpec, teacher: TeacherIdentity, k: number, tokenizer: Tokenizer): ExampleManifest {
  return {
    format_version: EXAMPLE_FORMAT_VERSION,
    teacher,
    // Servers and the local teacher report logprobs of the untempered distribution, whatever they sampled at.
    temperature: 1,
    sampling_temperature: spec.temperature,
    k,
    tail: spec.tail,
    tokenizer_hash: tokenizerHash(tokenizer),
    vocab_size: tokenizer.vocabSize,
  };
}

async function writeShards(paths: RunPaths, rows: readonly ExampleRowInput[], manifest: ExampleManifest, shardRows: number): Promise<string[]> {
  const files: string[] = [];
  for (let start = 0, index = 0; start < rows.length; start += shardRows, index++) {
    const file = paths.shard(index);
    await writeExampleShard(file, rows.slice(start, start + shardRows), manifest);
    files.push(file);
  }
  return files;
}

/** Shards past the new count, left by an earlier run that produced more. */
async function removeStaleShards(paths: RunPaths, count: number): Promise<void> {
  for (let index = count; ; index++) {
    const file = paths.shard(index);
    const existed = await rm(file).then(
      () => true,
      () => false,
    );
    if (!existed) return;
  }
}

/** `N reason` for each reason that dropped something, e.g. `4 wrong answer`. */
function droppedReasons(dropped: Record<string, number>): string[] {
  return Object.entries(dropped).filter(([, n]) => n > 0).map(([reason, n]) => `${n} ${reason.replaceAll('_', ' ')}`);
}

function describePairs(counts: PairCounts): string {
  return [`${counts.pairs} pairs`, `${counts.unpaired} prompts whose answers did not split`, ...droppedReasons(counts.dropped).map((d) => `${d} answers`)].join(', ');
}

function describeDrops(counts: RowCounts): string {
  const parts = [`${counts.kept} kept`, ...droppedReasons(counts.dropped)];
  if (counts.duplicates > 0) parts.push(`${counts.duplicates} duplicates`);
  return parts.join(', ');
}
