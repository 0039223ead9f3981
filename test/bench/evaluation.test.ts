import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { generateArithProblems } from '../../datasets/arith/problems.ts';
import { gsm8kFinalAnswer } from '../../datasets/gsm8k.ts';
import { initBackend } from '../../src/backend/index.ts';
import { arithAsGsm8k, arithAsMmlu, benchEvaluation } from '../../src/bench/evaluation.ts';
import { resolveModelConfig } from '../../src/model/config.ts';

await initBackend('wasm');

const TINY = resolveModelConfig({ vocabSize: 259, hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, tieWordEmbeddings: true });

describe('arithAsGsm8k', () => {
  it('keeps the worked lines as the solution and the result as the answer, as readGsm8k would', () => {
    const problems = generateArithProblems({ count: 20, seed: 3 });
    problems.forEach((problem, i) => {
      const mapped = arithAsGsm8k(problem, i);
      expect(mapped.question).toBe(problem.question);
      expect(`${mapped.solution}\n#### ${mapped.answer}`).toBe(problem.answer);
      expect(mapped.answer).toBe(gsm8kFinalAnswer(problem.answer));
      expect(mapped.solution).not.toContain('####');
    });
  });
});

describe('arithAsMmlu', () => {
  it('offers the result among four distinct non-negative numbers and points at it', () => {
    const problems = generateArithProblems({ count: 50, seed: 4 });
    const questions = arithAsMmlu(problems, 9);
    questions.forEach((question, i) => {
      expect(question.choices).toHaveLength(4);
      expect(new Set(question.choices).size).toBe(4);
      for (const choice of question.choices) expect(Number(choice)).toBeGreaterThanOrEqual(0);
      expect(Number(question.choices[question.answer])).toBe(problems[i].result);
    });
    // The seeded shuffle puts the answer in more than one place.
    expect(new Set(questions.map((q) => q.answer)).size).toBeGreaterThan(1);
  });
});

describe('benchEvaluation', () => {
  it('runs both suites over every question, decodes the whole budget of each, and frees its tensors', async () => {
    const tensorsBefore = tf.memory().numTensors;
    const result = await benchEvaluation({ questions: 3, maxTokens: 2, config: TINY });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    const { generation, loglikelihood } = result;
    expect(generation.questions).toBe(3);
    // The model has no EOS and two bytes cannot spell a stop string, so each question takes both tokens.
    expect(generation.tokens).toBe(3 * 2);
    expect(generation.batch).toBe(3);
    expect(generation.tokensPerSecond).toBeCloseTo(generation.tokens / generation.seconds, 6);
    expect(generation.questionsPerSecond * generation.seconds).toBeCloseTo(3, 6);
    expect(loglikelihood.questions).toBe(3);
    expect(loglikelihood.choices).toBe(4);
    expect(loglikelihood.shots).toBe(1);
    expect(loglikelihood.questionsPerSecond * loglikelihood.seconds).toBeCloseTo(3, 6);
    for (const value of [generation.seconds, generation.questionsPerSecond, loglikelihood.seconds, loglikelihood.questionsPerSecond]) {
      expect(Number.isFinite(value) && value > 0).toBe(true);
    }
    expect(result.model).toEqual({ tokenizer: 'byte-level', vocabSize: 259, parameters: expect.any(Number) });
  });

  it('rejects a vocabulary the byte-level tokenizer does not fill', async () => {
    const config = resolveModelConfig({ ...TINY, vocabSize: 300 });
    await expect(benchEvaluation({ questions: 1, config })).rejects.toThrow(/config\.vocabSize must be the byte-level tokenizer's 259, got 300/);
  });
});
