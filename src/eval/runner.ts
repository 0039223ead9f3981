/**
 * Runs a suite against a target: answers every document's request (from the cache when the same model
 * already answered the same request), scores it, and aggregates the metrics as lm-evaluation-harness
 * reports them: the mean over documents with its standard error (sample std / sqrt(n)), per group and,
 * for grouped suites, the macro average over groups.
 */
import { requestKey, type ResponseCache } from '../run/response-cache.ts';
import { SlmError } from '../util/errors.ts';
import type { DocumentScore, EvalDocument, EvalRequest, EvalResponse, Suite } from './suite.ts';
import type { EvalTarget } from './targets.ts';

export interface MetricValue {
  value: number;
  stderr: number;
  n: number;
}

export interface SampleRecord {
  id: string;
  request: EvalRequest;
  response: EvalResponse;
  extracted: Record<string, string | null>;
  target: string;
  metrics: Record<string, number>;
  groups?: Record<string, string>;
  doc?: Record<string, unknown>;
}

export interface SuiteResult {
  suite: string;
  version: string;
  promptStyle: string;
  shots: number;
  seed: number;
  model: { name: string; digest: string | null };
  n: number;
  /** Documents the data held before any limit. */
  available?: number;
  primaryMetric: string;
  metrics: Record<string, MetricValue>;
  /** Per group kind (e.g. subject) and group: the metrics of its documents. */
  groups: Record<string, Record<string, Record<string, MetricValue>>>;
  /** Per group kind: each metric averaged over the groups (the harness's MMLU "macro" number). */
  macro: Record<string, Record<string, MetricValue>>;
  /** Answers that came from the cache, and the time spent. */
  cached: number;
  seconds: number;
  documentsPerSecond: number;
}

export interface RunSuiteOptions {
  cache?: ResponseCache<EvalResponse>;
  /** Called after each batch of documents with the number done. */
  onProgress?(done: number, total: number): void;
}

/** Documents answered together: a target batches its generation over them. */
const DOCUMENTS_PER_CALL = 8;

export async function runSuite(suite: Suite, target: EvalTarget, options: RunSuiteOptions = {}): Promise<{ result: SuiteResult; samples: SampleRecord[] }> {
  const started = performance.now();
  const responses: EvalResponse[] = new Array(suite.documents.length);
  let cached = 0;
  const cache = target.digest === null ? undefined : options.cache;
  const keyOf = (document: EvalDocument) => requestKey({ digest: target.digest, request: document.request });
  const missing: number[] = [];
  suite.documents.forEach((document, i) => {
    const hit = cache?.get(keyOf(document));
    if (hit) {
      responses[i] = hit;
      cached++;
    } else missing.push(i);
  });
  for (let start = 0; start < missing.length; start += DOCUMENTS_PER_CALL) {
    const indexes = missing.slice(start, start + DOCUMENTS_PER_CALL);
    const answers = await answer(target, indexes.map((i) => suite.documents[i]));
    for (const [j, i] of indexes.entries()) {
      responses[i] = answers[j];
      await cache?.put(keyOf(suite.documents[i]), answers[j]);
    }
    options.onProgress?.(cached + start + indexes.length, suite.documents.length);
  }
  const samples = suite.documents.map((document, i) => sampleRecord(document, responses[i], suite.score(document, responses[i])));
  const seconds = (performance.now() - started) / 1000;
  return { result: aggregate(suite, target, samples, cached, seconds), samples };
}

async function answer(target: EvalTarget, documents: EvalDocument[]): Promise<EvalResponse[]> {
  const generations = documents.flatMap((d) => (d.request.kind === 'generate' ? [d.request] : []));
  const texts = generations.length > 0 ? await target.generate(generations) : [];
  const responses: EvalResponse[] = [];
  let nextText = 0;
  for (const document of documents) {
    const request = document.request;
    if (request.kind === 'generate') {
      responses.push({ kind: 'generate', text: texts[nextText++] });
      continue;
    }
    if (!target.loglikelihood) {
      throw new SlmError(target.noLoglikelihood ?? `${target.name} cannot score given text: use the suite's generative variant`, { code: 'ERR_EVAL' });
    }
    responses.push({ kind: 'loglikelihood', ...(await target.loglikelihood(request.context, request.continuations)) });
  }
  return responses;
}

function sampleRecord(document: EvalDocument, response: EvalResponse, score: DocumentScore): SampleRecord {
  const request = document.request;
  const record: SampleRecord = { id: document.id, request, response, extracted: score.extracted, target: document.target, metrics: score.metrics };
  if (document.groups) record.groups = document.groups;
  if (document.doc) record.doc = document.doc;
  return record;
}

function aggregate(suite: Suite, target: EvalTarget, samples: SampleRecord[], cached: number, seconds: number): SuiteResult {
  const groups: SuiteResult['groups'] = {};
  const macro: SuiteResult['macro'] = {};
  const kinds = new Set(samples.flatMap((s) => Object.keys(s.groups ?? {})));
  for (const kind of kinds) {
    const byGroup = new Map<string, SampleRecord[]>();
    for (const sample of samples) {
      const group = sample.groups?.[kind];
      if (group !== undefined) byGroup.set(group, [...(byGroup.get(group) ?? []), sample]);
    }
    groups[kind] = Object.fromEntries([...byGroup].sort(([a], [b]) => a.localeCompare(b)).map(([group, members]) => [group, metricsOf(members)]));
    macro[kind] = averageOverGroups(Object.values(groups[kind]));
  }
  return {
    suite: suite.name,
    version: suite.version,
    promptStyle: suite.promptStyle,
    shots: suite.shots,
    seed: suite.seed,
    model: { name: target.name, digest: target.digest },
    n: samples.length,
    ...(suite.available !== undefined && { available: suite.available }),
    primaryMetric: suite.primaryMetric,
    metrics: metricsOf(samples),
    groups,
    macro,
    cached,
    seconds,
    documentsPerSecond: samples.length / Math.max(seconds, 1e-9),
  };
}

function metricsOf(samples: readonly SampleRecord[]): Record<string, MetricValue> {
  const names = [...new Set(samples.flatMap((s) => Object.keys(s.metrics)))];
  return Object.fromEntries(names.map((name) => [name, meanWithStderr(samples.map((s) => s.metrics[name]).filter((v) => v !== undefined))]));
}

/** The mean and the harness's standard error: sample standard deviation (n - 1) over sqrt(n). */
export function meanWithStderr(values: readonly number[]): MetricValue {
  const n = values.length;
  const value = values.reduce((sum, v) => sum + v, 0) / Math.max(n, 1);
  const variance = n > 1 ? values.reduce((sum, v) => sum + (v - value) ** 2, 0) / (n - 1) : 0;
  return { value, stderr: Math.sqrt(variance / Math.max(n, 1)), n };
}

/** Each metric's unweighted mean over groups; its stderr pools the groups' (sqrt(sum se^2) / groups). */
function averageOverGroups(groups: readonly Record<string, MetricValue>[]): Record<string, MetricValue> {
  const names = [...new Set(groups.flatMap((g) => Object.keys(g)))];
  return Object.fromEntries(
    names.map((name) => {
      const members = groups.map((g) => g[name]).filter((m) => m !== undefined);
      const value = members.reduce((sum, m) => sum + m.value, 0) / members.length;
      const stderr = Math.sqrt(members.reduce((sum, m) => sum + m.stderr ** 2, 0)) / members.length;
      return [name, { value, stderr, n: members.reduce((sum, m) => sum + m.n, 0) }];
    }),
  );
}
