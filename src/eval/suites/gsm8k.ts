/**
 * GSM8K as lm-evaluation-harness runs it (tasks gsm8k and gsm8k_cot, version 3.0), plus zero-shot and
 * chat-template variants for instruction-tuned models:
 *
 *   5-shot      shots `Question: {q}\nAnswer: {worked answer}` drawn from the train split for each document
 *   cot-8-shot  shots `Q: {q}\nA: {reasoning} The answer is N.`, the fixed exemplars of Wei et al., first n
 *   zero-shot   `Question: {q}\nAnswer:` alone
 *   chat        the question as a user turn through the model's chat template; shots as earlier turns
 *
 * Shots are joined by a blank line, and a blank line separates them from the document's own prompt. Every
 * style is scored with both harness filters (answers.ts).
 */
import type { Gsm8kProblem } from '../../../datasets/gsm8k.ts';
import type { ChatMessage } from '../../../datasets/record-fields.ts';
import { SlmError } from '../../util/errors.ts';
import { PythonRandom } from '../../util/python-random.ts';
import { answersMatch, extractAnswer, generatedText } from '../answers.ts';
import type { StrictStyle } from '../answers.ts';
import type { DocumentScore, EvalDocument, EvalResponse, Suite } from '../suite.ts';
import { GSM8K_COT_EXEMPLARS } from './gsm8k-cot-exemplars.ts';

export type Gsm8kStyle = '5-shot' | 'cot-8-shot' | 'zero-shot' | 'chat';

/** Renders a conversation for generation; `compileChatTemplate` (datasets/chat-template.ts) makes one. */
export type ChatTemplate = (messages: readonly ChatMessage[], options: { addGenerationPrompt: boolean }) => string;

export interface Gsm8kSuiteOptions {
  /** The problems to evaluate (the test split), in order. */
  data: readonly Gsm8kProblem[];
  /** Where `5-shot` and `chat` shots come from (the train split). */
  fewshotPool?: readonly Gsm8kProblem[];
  /**
   * Whether the pool is the evaluated split itself: then, as the harness does, n + 1 are drawn and the
   * document's own problem is dropped from them.
   */
  poolIsEvaluatedSplit?: boolean;
  style: Gsm8kStyle;
  /** Default 5 for `5-shot`, 8 for `cot-8-shot`, 0 for `zero-shot` and `chat`. */
  shots?: number;
  /** Seeds the shot draw; the first n documents get the same shots whatever `limit` is. */
  seed: number;
  /** Default 256, the harness's. */
  maxTokens?: number;
  /** Required by the `chat` style. */
  chatTemplate?: ChatTemplate;
  /** Evaluate only the first `limit` problems. */
  limit?: number;
}

/** The harness's task names, so each style's results get their own <suite>.json. */
const SUITE_NAMES: Record<Gsm8kStyle, string> = { '5-shot': 'gsm8k', 'cot-8-shot': 'gsm8k_cot', 'zero-shot': 'gsm8k_zeroshot', chat: 'gsm8k_chat' };

export const GSM8K_METRICS = { strict: 'exact_match,strict-match', flexible: 'exact_match,flexible-extract' } as const;

/** 2: shots drawn as the harness draws them, their answers with commas as the data has them. */
const SUITE_VERSION = '2';
const DEFAULT_MAX_TOKENS = 256;

interface Shot {
  question: string;
  answer: string;
}

interface TextFormat {
  /** The harness's `doc_to_text`. */
  prompt(question: string): string;
  stop: string[];
  strict: StrictStyle;
}

const HARNESS_FORMAT: TextFormat = {
  prompt: (question) => `Question: ${question}\nAnswer:`,
  stop: ['Question:', '</s>', '<|im_end|>'],
  strict: 'gsm8k',
};

const COT_FORMAT: TextFormat = {
  prompt: (question) => `Q: ${question}\nA:`,
  stop: ['Q:', '</s>', '<|im_end|>'],
  strict: 'cot',
};

const DEFAULT_SHOTS: Record<Gsm8kStyle, number> = { '5-shot': 5, 'cot-8-shot': 8, 'zero-shot': 0, chat: 0 };

export function gsm8kSuite(options: Gsm8kSuiteOptions): Suite {
  const { style, seed, maxTokens = DEFAULT_MAX_TOKENS } = options;
  const shots = options.shots ?? DEFAULT_SHOTS[style];
  checkOptions(options, shots);
  const problems = options.data.slice(0, options.limit ?? options.data.length);
  const format = style === 'cot-8-shot' ? COT_FORMAT : HARNESS_FORMAT;
  const shotsOf = shotSource(options, shots);
  const render = options.chatTemplate && style === 'chat' ? chatPrompt(options.chatTemplate) : textPrompt(format);
  const documents = problems.map((problem): EvalDocument => ({
    id: problem.source,
    request: { kind: 'generate', prompt: render(shotsOf(problem), problem.question), stop: format.stop, maxTokens },
    // gsm8k_cot's target is the number alone; gsm8k's the whole answer. Scoring normalizes both to the number.
    target: style === 'cot-8-shot' ? problem.answer : problem.answerText,
    doc: { question: problem.question, answer: problem.answerText },
  }));
  return {
    name: SUITE_NAMES[style],
    version: SUITE_VERSION,
    promptStyle: style,
    shots,
    seed,
    documents,
    available: options.data.length,
    score: scorer(format.strict),
    primaryMetric: GSM8K_METRICS.flexible,
  };
}

function checkOptions(options: Gsm8kSuiteOptions, shots: number): void {
  const { style, limit, maxTokens } = options;
  if (!Number.isInteger(shots) || shots < 0) fail(`shots must be a non-negative integer, got ${shots}`);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) fail(`limit must be a non-negative integer, got ${limit}`);
  if (maxTokens !== undefined && (!Number.isInteger(maxTokens) || maxTokens < 1)) fail(`maxTokens must be a positive integer, got ${maxTokens}`);
  if (style === 'zero-shot' && shots > 0) fail(`style "zero-shot" takes no shots, got shots ${shots} (use style "5-shot" with shots ${shots})`);
  if (style === 'cot-8-shot' && shots > GSM8K_COT_EXEMPLARS.length) {
    fail(`style "cot-8-shot" has ${GSM8K_COT_EXEMPLARS.length} exemplars, got shots ${shots}`);
  }
  if ((style === '5-shot' || style === 'chat') && shots > 0 && !options.fewshotPool) {
    fail(`style "${style}" with ${shots} shots needs fewshotPool (the train split's problems)`);
  }
  if (style === 'chat' && !options.chatTemplate) fail('style "chat" needs chatTemplate (the model\'s chat template)');
}

function fail(message: string): never {
  throw new SlmError(`gsm8k: ${message}`, { code: 'ERR_EVAL' });
}

/**
 * The shots for each document in turn. CoT takes the first n exemplars (the harness's `first_n` sampler);
 * the others are the harness's default sampler: one CPython `random.Random(seed)` whose `sample(pool, n)`
 * is called once per document, in document order, so the same seed gives the harness's very prompts.
 */
function shotSource(options: Gsm8kSuiteOptions, shots: number): (problem: Gsm8kProblem) => Shot[] {
  if (shots === 0) return () => [];
  if (options.style === 'cot-8-shot') {
    const exemplars = GSM8K_COT_EXEMPLARS.slice(0, shots);
    return () => exemplars;
  }
  const pool = options.fewshotPool!;
  const rnd = new PythonRandom(options.seed);
  const drawn = shots + (options.poolIsEvaluatedSplit ? 1 : 0);
  if (pool.length < drawn) fail(`fewshotPool has ${pool.length} problems, fewer than the ${drawn} a document's shots are drawn from`);
  return (problem) => {
    const sample = rnd.sample(pool, drawn);
    const picked = options.poolIsEvaluatedSplit ? sample.filter((shot) => shot.source !== problem.source).slice(0, shots) : sample;
    return picked.map((shot) => ({ question: shot.question, answer: shot.answerText }));
  };
}

/** The harness's few-shot context: `doc_to_text + " " + target` per shot, all joined by a blank line. */
function textPrompt(format: TextFormat): (shots: readonly Shot[], question: string) => string {
  return (shots, question) =>
    [...shots.map((shot) => `${format.prompt(shot.question)} ${shot.answer}`), format.prompt(question)].join('\n\n');
}

function chatPrompt(template: ChatTemplate): (shots: readonly Shot[], question: string) => string {
  return (shots, question) => {
    const turns = shots.flatMap((shot): ChatMessage[] => [
      { role: 'user', content: shot.question },
      { role: 'assistant', content: shot.answer },
    ]);
    return template([...turns, { role: 'user', content: question }], { addGenerationPrompt: true });
  };
}

function scorer(strict: StrictStyle): (document: EvalDocument, response: EvalResponse) => DocumentScore {
  return (document, response) => {
    const output = generatedText(response, document.id);
    const strictAnswer = extractAnswer(output, 'strict-match', strict);
    const flexibleAnswer = extractAnswer(output, 'flexible-extract');
    return {
      metrics: {
        [GSM8K_METRICS.strict]: Number(answersMatch(strictAnswer, document.target)),
        [GSM8K_METRICS.flexible]: Number(answersMatch(flexibleAnswer, document.target)),
      },
      extracted: { 'strict-match': strictAnswer, 'flexible-extract': flexibleAnswer },
    };
  };
}
