import { describe, expect, it } from 'vitest';
import type { MmluQuestion } from '../../../datasets/mmlu.ts';
import type { EvalResponse } from '../../../src/eval/suite.ts';
import { mmluSuite } from '../../../src/eval/suites/mmlu.ts';

function question(subject: string, line: number, text: string, choices: string[], answer: number, split = 'test'): MmluQuestion {
  return { subject, question: text, choices: choices as MmluQuestion['choices'], answer, source: `${split}/${subject}_${split}.csv:${line}` };
}

const PHYSICS_DEV = [
  question('high_school_physics', 1, '  What is the SI unit of force? ', ['joule', 'newton', 'watt', 'pascal'], 1, 'dev'),
  question('high_school_physics', 2, 'Light travels fastest in', ['glass', 'water', 'vacuum', 'air'], 2, 'dev'),
  question('high_school_physics', 3, 'Third dev question', ['a', 'b', 'c', 'd'], 0, 'dev'),
];
const ANATOMY_DEV = [
  question('anatomy', 1, 'How many chambers has the human heart?', ['2', '3', '4', '5'], 2, 'dev'),
  question('anatomy', 2, 'Second anatomy dev', ['a', 'b', 'c', 'd'], 3, 'dev'),
];
const TEST = [
  question('anatomy', 1, 'Which bone is the longest?', ['femur', 'tibia', 'humerus', 'radius'], 0),
  question('anatomy', 2, 'Where is the patella?', ['arm', 'knee', 'skull', 'foot'], 1),
  question('high_school_physics', 1, 'What does a voltmeter measure?\n', ['current', 'resistance', 'potential difference', 'power'], 2),
  question('high_school_physics', 2, 'g near the surface of the Earth is about', ['1 m/s^2', '9.8 m/s^2', '98 m/s^2', '0.98 m/s^2'], 1),
  question('high_school_physics', 3, 'Unit of charge?', ['coulomb', 'ampere', 'volt', 'ohm'], 0),
];
const DEV = [...ANATOMY_DEV, ...PHYSICS_DEV];

const loglikelihood = (logprobs: number[]): EvalResponse => ({ kind: 'loglikelihood', logprobs, greedy: logprobs.map(() => false) });

describe('mmluSuite: loglikelihood', () => {
  it('writes the harness prompt: header, the first dev questions answered, the question, stripped', () => {
    const { documents } = mmluSuite({ test: TEST, dev: DEV, shots: 2, mode: 'loglikelihood', seed: 0 });
    expect(documents[2]).toEqual({
      id: 'test/high_school_physics_test.csv:1',
      request: {
        kind: 'loglikelihood',
        context:
          'The following are multiple choice questions (with answers) about high school physics.\n\n' +
          'What is the SI unit of force?\nA. joule\nB. newton\nC. watt\nD. pascal\nAnswer: B\n\n' +
          'Light travels fastest in\nA. glass\nB. water\nC. vacuum\nD. air\nAnswer: C\n\n' +
          'What does a voltmeter measure?\nA. current\nB. resistance\nC. potential difference\nD. power\nAnswer:',
        continuations: [' A', ' B', ' C', ' D'],
      },
      target: 'C',
      groups: { subject: 'high_school_physics' },
      doc: { question: expect.stringContaining('voltmeter'), subject: 'high_school_physics', choices: ['current', 'resistance', 'potential difference', 'power'], answer: 2 },
    });
  });

  it('zero-shot is the header and the question', () => {
    const { documents, shots, promptStyle } = mmluSuite({ test: TEST, dev: [], shots: 0, mode: 'loglikelihood', seed: 0 });
    expect([shots, promptStyle]).toEqual([0, '0-shot']);
    expect(documents[0].request).toMatchObject({
      context: 'The following are multiple choice questions (with answers) about anatomy.\n\nWhich bone is the longest?\nA. femur\nB. tibia\nC. humerus\nD. radius\nAnswer:',
    });
  });

  it('takes each subject shots from its own dev questions, first in file order, 5 by default', () => {
    const extra = (subject: string, line: number, answer: number) => question(subject, line, `${subject} ${line}`, ['a', 'b', 'c', 'd'], answer, 'dev');
    const dev = [...ANATOMY_DEV, extra('anatomy', 3, 0), extra('anatomy', 4, 1), extra('anatomy', 5, 2), extra('anatomy', 6, 3)];
    dev.push(...PHYSICS_DEV, extra('high_school_physics', 4, 3), extra('high_school_physics', 5, 1));
    const suite = mmluSuite({ test: TEST, dev, mode: 'loglikelihood', seed: 0 });
    expect(suite.shots).toBe(5);
    const context = (i: number) => (suite.documents[i].request.kind === 'loglikelihood' ? suite.documents[i].request.context : '');
    const answersShown = (i: number) => [...context(i).matchAll(/\nAnswer: ([A-D])\n\n/g)].map((m) => m[1]);
    expect(answersShown(0)).toEqual(['C', 'D', 'A', 'B', 'C']);
    expect(context(0)).not.toContain('anatomy 6');
    expect(answersShown(3)).toEqual(['B', 'C', 'A', 'D', 'B']);
    expect(context(3)).toContain('Answer: D\n\nhigh_school_physics 5\n');
  });

  it('scores the most likely letter, the first on ties', () => {
    const suite = mmluSuite({ test: TEST, dev: DEV, shots: 1, mode: 'loglikelihood', seed: 0 });
    const femur = suite.documents[0];
    expect(suite.score(femur, loglikelihood([-0.2, -1.5, -3, -2]))).toEqual({ metrics: { acc: 1 }, extracted: { choice: 'A' } });
    expect(suite.score(femur, loglikelihood([-2, -0.5, -3, -1]))).toEqual({ metrics: { acc: 0 }, extracted: { choice: 'B' } });
    expect(suite.score(femur, loglikelihood([-1, -1, -1, -1]))).toEqual({ metrics: { acc: 1 }, extracted: { choice: 'A' } });
    expect(() => suite.score(femur, loglikelihood([-1, -2]))).toThrow(/expected 4 log-probabilities/);
  });

  it('keeps the first limit questions of every subject', () => {
    const suite = mmluSuite({ test: TEST, dev: DEV, shots: 1, mode: 'loglikelihood', seed: 0, limit: 2 });
    expect(suite.documents.map((d) => d.id)).toEqual([
      'test/anatomy_test.csv:1',
      'test/anatomy_test.csv:2',
      'test/high_school_physics_test.csv:1',
      'test/high_school_physics_test.csv:2',
    ]);
    expect(mmluSuite({ test: TEST, dev: DEV, shots: 1, mode: 'loglikelihood', seed: 0, limit: 1 }).documents.map((d) => d.groups)).toEqual([
      { subject: 'anatomy' },
      { subject: 'high_school_physics' },
    ]);
  });

  it('describes itself', () => {
    const { documents, score, ...rest } = mmluSuite({ test: TEST, dev: DEV, shots: 2, mode: 'loglikelihood', seed: 4 });
    expect([documents.length, typeof score]).toEqual([5, 'function']);
    expect(rest).toEqual({ name: 'mmlu', version: '1', promptStyle: '2-shot', shots: 2, seed: 4, available: 5, primaryMetric: 'acc' });
  });

  it('refuses a subject with fewer dev questions than shots', () => {
    expect(() => mmluSuite({ test: TEST, dev: DEV, shots: 3, mode: 'loglikelihood', seed: 0 })).toThrow(
      /mmlu: subject "anatomy" has 2 dev questions, fewer than the 3 shots/,
    );
    expect(() => mmluSuite({ test: TEST, dev: ANATOMY_DEV, shots: 1, mode: 'loglikelihood', seed: 0 })).toThrow(/"high_school_physics" has 0 dev/);
  });
});

describe('mmluSuite: generate', () => {
  const suite = mmluSuite({ test: TEST, dev: DEV, shots: 1, mode: 'generate', seed: 0 });

  it('asks for a couple of tokens of the same prompt, stopping at a newline', () => {
    expect(suite.promptStyle).toBe('1-shot-generate');
    expect(suite.documents[1].request).toEqual({
      kind: 'generate',
      prompt:
        'The following are multiple choice questions (with answers) about anatomy.\n\n' +
        'How many chambers has the human heart?\nA. 2\nB. 3\nC. 4\nD. 5\nAnswer: C\n\n' +
        'Where is the patella?\nA. arm\nB. knee\nC. skull\nD. foot\nAnswer:',
      stop: ['\n'],
      maxTokens: 2,
    });
  });

  it('scores the first letter the model names', () => {
    const patella = suite.documents[1];
    const score = (text: string) => suite.score(patella, { kind: 'generate', text });
    expect(score(' B')).toEqual({ metrics: { acc: 1 }, extracted: { choice: 'B' } });
    expect(score(' (B) knee')).toEqual({ metrics: { acc: 1 }, extracted: { choice: 'B' } });
    expect(score(' C')).toEqual({ metrics: { acc: 0 }, extracted: { choice: 'C' } });
    expect(score(' The')).toEqual({ metrics: { acc: 0 }, extracted: { choice: null } });
  });
});
