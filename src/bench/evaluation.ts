/**
 * Evaluation throughput: questions per second through the eval runner, with no answer cache, for a
 * generation suite (GSM8K zero-shot: greedy, batched, a fixed budget of new tokens) and a log-likelihood
 * suite (MMLU 1-shot: four continuations scored per question), on generated arithmetic problems.
 *
 * The model has BENCH_MODEL's shape with the byte-level tokenizer's 259-id vocabulary: no tokenizer of
 * BENCH_MODEL's 4096 ids exists, and a vocabulary the tokenizer cannot fill would only hide ids it never
 * produces. Prompts are therefore as many tokens as bytes, more than a BPE tokenizer would make of them.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { generateArithProblems, type ArithProblem } from '../../datasets/arith/problems.ts';
import type { Gsm8kProblem } from '../../datasets/gsm8k.ts';
import type { MmluQuestion } from '../../datasets/mmlu.ts';
import { runSuite, type SampleRecord } from '../eval/runner.ts';
import type { Suite } from '../eval/suite.ts';
import { gsm8kSuite } from '../eval/suites/gsm8k.ts';
import { mmluSuite } from '../eval/suites/mmlu.ts';
import { modelTarget, type EvalTarget } from '../eval/targets.ts';
import { CausalLM } from '../model/causal-lm.ts';
import { countParameters, type ModelConfig } from '../model/config.ts';
import { BYTE_LEVEL_VOCAB_SIZE, createByteLevelTokenizer } from '../tokenizer/byte-level.ts';
import { Rng } from '../util/rng.ts';
import { BENCH_MODEL } from './training.ts';

/** BENCH_MODEL with the byte-level vocabulary. Its EOS is unset, so every question takes the whole token budget. */
export const BENCH_EVAL_MODEL: ModelConfig = { ...BENCH_MODEL, vocabSize: BYTE_LEVEL_VOCAB_SIZE };

export const BENCH_EVAL_DEFAULTS = { questions: 16, maxTokens: 32 };

const MMLU_SHOTS = 1;
const MMLU_SUBJECT = 'elementary_mathematics';
const PROBLEM_SEED = 11;
const CHOICE_SEED = 12;

export interface EvaluationBenchOptions {
  /** Questions per suite; default 16. */
  questions?: number;
  /** New tokens per GSM8K question; default 32 (the harness allows 256). */
  maxTokens?: number;
  /** The model's shape; BENCH_EVAL_MODEL by default. Its vocabulary must be the byte-level tokenizer's. */
  config?: ModelConfig;
}

export interface GenerationBenchResult {
  suite: string;
  questions: number;
  maxTokens: number;
  seconds: number;
  questionsPerSecond: number;
  /** New tokens the model decoded, prefill's first token of each row included. */
  tokens: number;
  tokensPerSecond: number;
  /** The most rows decoded together. */
  batch: number;
}

export interface LoglikelihoodBenchResult {
  suite: string;
  shots: number;
  questions: number;
  /** Continuations scored per question, one forward pass each. */
  choices: number;
  seconds: number;
  questionsPerSecond: number;
}

/** The same generation suite decoded by real llama.cpp (eval --engine llama.cpp), or why it was not. */
export type LlamaCppGenerationResult =
  | { questionsPerSecond: number; ratioToTfjs: number; sameAnswers: number }
  | { skipped: string };

export interface EvaluationBenchResult {
  model: { tokenizer: 'byte-level'; vocabSize: number; parameters: number };
  generation: GenerationBenchResult;
  generationLlamaCpp: LlamaCppGenerationResult;
  loglikelihood: LoglikelihoodBenchResult;
}

/** Each suite runs one question untimed first, then all of them timed, on a fresh model of seed 0. */
export async function benchEvaluation(options: EvaluationBenchOptions = {}): Promise<EvaluationBenchResult> {
  const { questions = BENCH_EVAL_DEFAULTS.questions, maxTokens = BENCH_EVAL_DEFAULTS.maxTokens, config = BENCH_EVAL_MODEL } = options;
  checkOptions(questions, maxTokens, config);
  const counter = new DecodeCounter();
  const model = CausalLM.init(config, { seed: 0 });
  const target = modelTarget('benchmark model', 'bench:seed-0', countingDecodes(model, counter), createByteLevelTokenizer());
  try {
    const problems = generateArithProblems({ count: MMLU_SHOTS + questions, seed: PROBLEM_SEED });
    const [dev, test] = [problems.slice(0, MMLU_SHOTS), problems.slice(MMLU_SHOTS)];
    const { bench: generation, samples } = await timeGeneration(target, test.map(arithAsGsm8k), maxTokens, counter);
    const generationLlamaCpp = await timeLlamaCppGeneration(model, test.map(arithAsGsm8k), maxTokens, generation, samples);
    const loglikelihood = await timeLoglikelihood(target, arithAsMmlu(test, CHOICE_SEED), arithAsMmlu(dev, CHOICE_SEED + 1));
    return { model: { tokenizer: 'byte-level', vocabSize: config.vocabSize, parameters: countParameters(config) }, generation, generationLlamaCpp, loglikelihood };
  } finally {
    await target.dispose();
  }
}

/** The generation suite through the llama.cpp engine on the same model: its pace, and how many answers are ours. */
async function timeLlamaCppGeneration(model: CausalLM, data: Gsm8kProblem[], maxTokens: number, tfjs: GenerationBenchResult, tfjsSamples: SampleRecord[]): Promise<LlamaCppGenerationResult> {
  const logged: string[] = [];
  const target = modelTarget('benchmark model', 'bench:seed-0', model, createByteLevelTokenizer(), null, { engine: 'auto', ownsModel: false, logger: { info: (line) => logged.push(line) } });
  try {
    const suite = gsm8kSuite({ data, style: 'zero-shot', seed: 0, maxTokens });
    await runSuite(firstDocument(suite), target);
    if (!logged.some((line) => line.startsWith('generating with llama.cpp'))) return { skipped: logged.join('; ') };
    const { result, samples } = await runSuite(suite, target);
    const same = samples.filter((sample, i) => JSON.stringify(sample.response) === JSON.stringify(tfjsSamples[i].response)).length;
    return { questionsPerSecond: result.documentsPerSecond, ratioToTfjs: result.documentsPerSecond / tfjs.questionsPerSecond, sameAnswers: same / samples.length };
  } finally {
    await target.dispose();
  }
}

function checkOptions(questions: number, maxTokens: number, config: ModelConfig): void {
  if (!Number.isInteger(questions) || questions < 1) throw new RangeError(`benchEvaluation: questions must be a positive integer, got ${questions}`);
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`benchEvaluation: maxTokens must be a positive integer, got ${maxTokens}`);
  if (config.vocabSize !== BYTE_LEVEL_VOCAB_SIZE) {
    throw new RangeError(`benchEvaluation: config.vocabSize must be the byte-level tokenizer's ${BYTE_LEVEL_VOCAB_SIZE}, got ${config.vocabSize}`);
  }
}

async function timeGeneration(target: EvalTarget, data: Gsm8kProblem[], maxTokens: number, counter: DecodeCounter): Promise<{ bench: GenerationBenchResult; samples: SampleRecord[] }> {
  const suite = gsm8kSuite({ data, style: 'zero-shot', seed: 0, maxTokens });
  await runSuite(firstDocument(suite), target);
  counter.reset();
  const { result, samples } = await runSuite(suite, target);
  const bench = {
    suite: `${suite.name} (${suite.promptStyle})`,
    questions: result.n,
    maxTokens,
    seconds: result.seconds,
    questionsPerSecond: result.documentsPerSecond,
    tokens: counter.tokens,
    tokensPerSecond: counter.tokens / result.seconds,
    batch: counter.widestBatch,
  };
  return { bench, samples };
}

async function timeLoglikelihood(target: EvalTarget, test: MmluQuestion[], dev: MmluQuestion[]): Promise<LoglikelihoodBenchResult> {
  const suite = mmluSuite({ test, dev, shots: MMLU_SHOTS, mode: 'loglikelihood', seed: 0 });
  await runSuite(firstDocument(suite), target);
  const { result } = await runSuite(suite, target);
  const request = suite.documents[0].request;
  return {
    suite: `${suite.name} (${suite.promptStyle})`,
    shots: suite.shots,
    questions: result.n,
    choices: request.kind === 'loglikelihood' ? request.continuations.length : 0,
    seconds: result.seconds,
    questionsPerSecond: result.documentsPerSecond,
  };
}

function firstDocument(suite: Suite): Suite {
  return { ...suite, documents: suite.documents.slice(0, 1) };
}

/** An arithmetic problem in the shape GSM8K's reader gives: the worked lines, then the number after `####`. */
export function arithAsGsm8k(problem: ArithProblem, index: number): Gsm8kProblem {
  const solution = problem.answer.slice(0, problem.answer.lastIndexOf('####')).trim();
  return { question: problem.question, solution, answer: String(problem.result), answerText: problem.answer, source: `arith:${index}` };
}

/**
 * Arithmetic problems as four-choice questions: the result and three distinct non-negative numbers
 * within 10 of it, in a seeded random order.
 */
export function arithAsMmlu(problems: readonly ArithProblem[], seed: number): MmluQuestion[] {
  const rng = new Rng(seed);
  return problems.map((problem, index) => {
    const numbers = new Set([problem.result]);
    while (numbers.size < 4) numbers.add(Math.max(0, problem.result + rng.int(21) - 10));
    const choices = rng.shuffle([...numbers]).map(String) as MmluQuestion['choices'];
    return { subject: MMLU_SUBJECT, question: problem.question, choices, answer: choices.indexOf(String(problem.result)), source: `arith:${index}` };
  });
}

/** Tokens generation decodes: every call of `logits` from outside the model picks one new token per row. */
class DecodeCounter {
  tokens = 0;
  widestBatch = 0;

  record(rows: number): void {
    this.tokens += rows;
    this.widestBatch = Math.max(this.widestBatch, rows);
  }

  reset(): void {
    this.tokens = 0;
    this.widestBatch = 0;
  }
}

/**
 * The model, with its `logits` calls counted. Generation (generateBatch) calls `logits` itself on each
 * row's last position; scoring goes through `forward`, whose inner call reaches the model unwrapped, as
 * every method runs bound to the model itself.
 */
function countingDecodes(model: CausalLM, counter: DecodeCounter): CausalLM {
  return new Proxy(model, {
    get(target, key) {
      if (key === 'logits') {
        return (hidden: tf.Tensor3D) => {
          counter.record(hidden.shape[0]);
          return target.logits(hidden);
        };
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
