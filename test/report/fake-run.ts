/**
 * A run folder as a finished distillation run leaves it, made by hand with known values: the resolved
 * recipe, metrics of the KD student and of its CE-only baseline, a data summary, evaluation results of
 * student, teacher and CE-only student, final/ and the teacher as tiny real model folders, and exports.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/backend/index.ts';
import type { MetricValue, SuiteResult } from '../../src/eval/runner.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig, type ModelConfigInput } from '../../src/model/config.ts';
import { parseRecipe, resolvedRecipeYaml } from '../../src/recipe/index.ts';
import type { GenerateSummary } from '../../src/run/data-summary.ts';
import type { MetricsRecord } from '../../src/run/metrics.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';

export const STEPS_DONE = 30;
export const MAX_STEPS = 40;
export const VALIDATION_EVERY = 10;

export interface FakeRun {
  outputDir: string;
  runDir: string;
  teacherDir: string;
  metrics: MetricsRecord[];
  ceMetrics: MetricsRecord[];
  data: GenerateSummary;
  student: SuiteResult[];
  teacher: SuiteResult[];
  ceBaseline: SuiteResult[];
  /** Paths relative to the run folder -> byte length, of the exported files. */
  exports: Record<string, number>;
}

export async function makeFakeRun(): Promise<FakeRun> {
  await initBackend('cpu');
  const root = mkdtempSync(join(tmpdir(), 'report-'));
  const outputDir = join(root, 'runs');
  const runDir = join(outputDir, 'fake-kd');
  const teacherDir = join(root, 'teacher');
  const vocabSize = createByteLevelTokenizer().vocabSize;
  await writeTinyModel(teacherDir, { vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2 });
  await writeTinyModel(join(runDir, 'final'), { vocabSize, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2 });
  writeFileSync(join(root, 'arith-test.jsonl'), '{"question": "1+1?", "answer": "#### 2"}\n');
  const recipe = parseRecipe(recipeYaml(outputDir, teacherDir, join(root, 'arith-test.jsonl')), 'fake-kd.yaml', root);
  writeFileSync(join(runDir, 'recipe.yaml'), resolvedRecipeYaml(recipe));

  const metrics = studentMetrics();
  const ceMetrics = ceOnlyMetrics();
  writeJsonl(join(runDir, 'metrics.jsonl'), metrics);
  writeJsonl(join(runDir, 'ce-baseline', 'metrics.jsonl'), ceMetrics);
  const data = dataSummary();
  writeJson(join(runDir, 'data', 'summary.json'), data);

  const student = [suiteResult('gsm8k', 'fake-kd', { strict: [0.3, 0.0324, 200], flexible: [0.345, 0.0337, 200] }, 4.2), mmluResult('fake-kd', 0.41, 0.018)];
  const teacher = [suiteResult('gsm8k', 'teacher', { strict: [0.62, 0.0344, 200], flexible: [0.64, 0.034, 200] }, 1.7), mmluResult('teacher', 0.55, 0.0175)];
  const ceBaseline = [suiteResult('gsm8k', 'fake-kd ce-baseline', { strict: [0.265, 0.0312, 200], flexible: [0.3, 0.0325, 200] }, 4.5)];
  for (const result of student) writeJson(join(runDir, 'eval', `${result.suite}.json`), result);
  for (const result of teacher) writeJson(join(runDir, 'eval', 'teacher', `${result.suite}.json`), result);
  for (const result of ceBaseline) writeJson(join(runDir, 'eval', 'ce-baseline', `${result.suite}.json`), result);

  const exports = { 'export/gguf/model.gguf': 12_345, 'export/hf/config.json': 321, 'export/hf/model.safetensors': 54_321 };
  for (const [path, bytes] of Object.entries(exports)) writeBytes(join(runDir, path), bytes);
  return { outputDir, runDir, teacherDir, metrics, ceMetrics, data, student, teacher, ceBaseline, exports };
}

function recipeYaml(outputDir: string, teacherDir: string, evalData: string): string {
  return `name: fake-kd
seed: 3
output_dir: ${outputDir}
teacher: { provider: local, model: ${teacherDir} }
generate: { prompts: ["What is 1+1?", "What is 2+2?"], k: 4 }
student:
  type: scratch
  tokenizer: byte
  architecture: { hidden_size: 16, intermediate_size: 32, num_layers: 1, num_heads: 2 }
data: { seq_len: 32, validation: { fraction: 0.1 } }
distill: { alpha: 0.5 }
train: { max_steps: ${MAX_STEPS}, eval_every: ${VALIDATION_EVERY} }
eval:
  targets: [student, teacher]
  suites: [{ suite: gsm8k, data: ${evalData}, style: zero-shot }]
`;
}

async function writeTinyModel(dir: string, input: ModelConfigInput): Promise<void> {
  const config = resolveModelConfig(input);
  const model = CausalLM.init(config, { seed: 1, std: 0.1 });
  await writeHfModelDir(dir, { config, tensors: model.hfTensors(), dtype: 'F32' });
  model.dispose();
}

/** Distillation metrics: loss = CE and KD halves, validation every 10 steps, an evaluation at steps 10 and 20. */
function studentMetrics(): MetricsRecord[] {
  return Array.from({ length: STEPS_DONE }, (_, i) => {
    const step = i + 1;
    const ce = 2 * Math.exp(-step / 12) + 0.6;
    const kd = 1.5 * Math.exp(-step / 9) + 0.2;
    const record: MetricsRecord = {
      step,
      loss: 0.5 * ce + 0.5 * kd,
      ce,
      kd,
      top1_agreement: 0.3 + 0.015 * step,
      lr: 1e-3,
      grad_norm: 1 / step,
      tokens_per_second: 1000 + ((step * 37) % 101),
      elapsed: step * 0.8,
    };
    if (step % VALIDATION_EVERY === 0) {
      Object.assign(record, { val_ce: ce + 0.1, val_kd: kd + 0.05, val_top1_agreement: 0.28 + 0.015 * step });
      record.val_loss = 0.5 * (ce + 0.1) + 0.5 * (kd + 0.05);
    }
    if (step === 10 || step === 20) record.eval_gsm8k = step / 100;
    return record;
  });
}

function ceOnlyMetrics(): MetricsRecord[] {
  return Array.from({ length: STEPS_DONE }, (_, i) => {
    const step = i + 1;
    const loss = 2.2 * Math.exp(-step / 11) + 0.7;
    const record: MetricsRecord = { step, loss, lr: 1e-3, grad_norm: 1, tokens_per_second: 1500 + step, elapsed: step * 0.5 };
    if (step % VALIDATION_EVERY === 0) record.val_loss = loss + 0.12;
    return record;
  });
}

function dataSummary(): GenerateSummary {
  return {
    mode: 'generate',
    teacher: { provider: 'local', model: '/models/teacher', digest: 'sha256:abc123' },
    prompts: 1500,
    requests: 1500,
    cached: 300,
    queried: 1200,
    examples: 1432,
    counts: { kept: 1432, duplicates: 17, dropped: { too_short: 10, too_long: 0, truncated: 41, missing_pattern: 0, rejected_pattern: 0, wrong_answer: 9 }, withoutSoftLabels: 3, responseTokens: 98_765 },
    pairs: null,
    k: 8,
    fallback: null,
    teacherRequests: null,
    attempts: 1,
    seconds: 812.5,
    shards: ['shard-00000.arrow', 'shard-00001.arrow'],
  };
}

function suiteResult(suite: string, model: string, values: Record<'strict' | 'flexible', [number, number, number]>, seconds: number): SuiteResult {
  const metric = ([value, stderr, n]: [number, number, number]): MetricValue => ({ value, stderr, n });
  return {
    suite,
    version: '3.0',
    promptStyle: 'zero-shot',
    shots: 0,
    seed: 3,
    model: { name: model, digest: `digest-${model}` },
    n: 200,
    primaryMetric: 'exact_match,strict-match',
    metrics: { 'exact_match,strict-match': metric(values.strict), 'exact_match,flexible-extract': metric(values.flexible) },
    groups: {},
    macro: {},
    cached: 20,
    seconds,
    documentsPerSecond: 200 / seconds,
  };
}

function mmluResult(model: string, value: number, stderr: number): SuiteResult {
  return {
    suite: 'mmlu',
    version: '1.0',
    promptStyle: '5-shot',
    shots: 5,
    seed: 3,
    model: { name: model, digest: `digest-${model}` },
    n: 570,
    primaryMetric: 'acc',
    metrics: { acc: { value, stderr, n: 570 } },
    groups: { subject: {} },
    macro: { subject: { acc: { value: value - 0.01, stderr: stderr * 1.1, n: 57 } } },
    cached: 0,
    seconds: 30,
    documentsPerSecond: 19,
  };
}

function writeJsonl(path: string, records: readonly object[]): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

function writeJson(path: string, value: unknown): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, JSON.stringify(value, null, 2));
}

function writeBytes(path: string, length: number): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, Buffer.alloc(length, 7));
}
