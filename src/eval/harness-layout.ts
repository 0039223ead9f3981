/**
 * Evaluation results in lm-evaluation-harness's layout, so its tooling (and anything that reads its
 * results_*.json and samples_*.jsonl) reads ours: `results` per task with `metric,filter` and
 * `metric_stderr,filter` keys, `groups`/`group_subtasks` for grouped suites (MMLU: mmlu, then mmlu_<subject>),
 * `configs`, `versions`, `n-shot`, `higher_is_better`, `n-samples`, `config`, `date`; per-sample lines with
 * the harness's fields, one per document and filter. Our own record of the run rides along under
 * `slm-train`, which is what this program reads back.
 */
import { createHash } from 'node:crypto';
import type { MetricValue, SampleRecord, SuiteResult } from './runner.ts';

export const OWN_RECORD_KEY = 'slm-train';

/** A metric name as the harness keys it: `exact_match,strict-match` stays; `acc` becomes `acc,none`. */
function withFilter(metric: string): { name: string; filter: string } {
  const comma = metric.indexOf(',');
  return comma < 0 ? { name: metric, filter: 'none' } : { name: metric.slice(0, comma), filter: metric.slice(comma + 1) };
}

function taskMetrics(alias: string, metrics: Record<string, MetricValue>): Record<string, string | number> {
  const entry: Record<string, string | number> = { alias };
  for (const [metric, value] of Object.entries(metrics)) {
    const { name, filter } = withFilter(metric);
    entry[`${name},${filter}`] = value.value;
    entry[`${name}_stderr,${filter}`] = value.stderr;
  }
  return entry;
}

export function harnessResults(result: SuiteResult, samples: readonly SampleRecord[], date = Date.now() / 1000): Record<string, unknown> {
  const task = result.suite;
  const subtasks = Object.entries(result.groups).flatMap(([, groups]) => Object.entries(groups).map(([group, metrics]) => ({ name: `${task}_${group}`, metrics })));
  const higher = Object.fromEntries(Object.keys(result.metrics).map((metric) => [withFilter(metric).name, true]));
  const perTask = (value: unknown) => Object.fromEntries([task, ...subtasks.map((s) => s.name)].map((name) => [name, value]));
  const first = samples[0]?.request;
  const overall = taskMetrics(task, result.metrics);
  return {
    results: {
      [task]: overall,
      ...Object.fromEntries(subtasks.map((s) => [s.name, taskMetrics(` - ${s.name}`, s.metrics)])),
    },
    ...(subtasks.length > 0 && { groups: { [task]: overall } }),
    group_subtasks: { [task]: subtasks.map((s) => s.name) },
    configs: {
      [task]: {
        task,
        output_type: first?.kind === 'loglikelihood' ? 'multiple_choice' : 'generate_until',
        num_fewshot: result.shots,
        ...(first?.kind === 'generate' && { generation_kwargs: generationKwargs(first) }),
        metadata: { version: result.version, prompt_style: result.promptStyle },
      },
    },
    versions: perTask(result.version),
    'n-shot': perTask(result.shots),
    higher_is_better: perTask(higher),
    'n-samples': { [task]: { original: result.available ?? result.n, effective: result.n } },
    config: {
      model: 'slm-train',
      model_args: `pretrained=${result.model.name}`,
      model_digest: result.model.digest,
      fewshot_seed: result.seed,
      bootstrap_iters: 0,
    },
    date,
    [OWN_RECORD_KEY]: result,
  };
}

/** The harness's per-sample records: one per document and filter, metrics under their own names. */
export function harnessSampleLines(samples: readonly SampleRecord[]): Record<string, unknown>[] {
  return samples.flatMap((sample, docId) => {
    const byFilter = new Map<string, Record<string, number>>();
    for (const [metric, value] of Object.entries(sample.metrics)) {
      const { name, filter } = withFilter(metric);
      byFilter.set(filter, { ...byFilter.get(filter), [name]: value });
    }
    const args = argumentsOf(sample);
    const resps = responsesOf(sample);
    const doc = sample.doc ?? { id: sample.id };
    // The same for every filter of the document: computed once.
    const hashes = { doc_hash: sha256(JSON.stringify(doc, null, 2)), prompt_hash: sha256(String(args[0]?.[0] ?? '')), target_hash: sha256(sample.target) };
    return [...byFilter].map(([filter, metrics]) => ({
      doc_id: docId,
      doc,
      target: sample.target,
      arguments: args,
      resps,
      filtered_resps: sample.response.kind === 'generate' ? [sample.extracted[filter] ?? ''] : resps.map((r) => r[0]),
      filter,
      metrics: Object.keys(metrics),
      ...hashes,
      ...metrics,
      id: sample.id,
    }));
  });
}

function generationKwargs(request: SampleRecord['request'] & { kind: 'generate' }) {
  return { until: request.stop, do_sample: false, temperature: 0, max_gen_toks: request.maxTokens };
}

function argumentsOf(sample: SampleRecord): unknown[][] {
  const request = sample.request;
  if (request.kind === 'generate') return [[request.prompt, generationKwargs(request)]];
  return request.continuations.map((continuation) => [request.context, continuation]);
}

function responsesOf(sample: SampleRecord): unknown[][] {
  const response = sample.response;
  if (response.kind === 'generate') return [[response.text]];
  return response.logprobs.map((logprob, i) => [[logprob, response.greedy[i]]]);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
