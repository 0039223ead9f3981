import { describe, expect, it } from 'vitest';
import { mapFields } from '../../datasets/record-fields.ts';

describe('mapFields', () => {
  it('maps prompt and response from the named columns', () => {
    const record = { question: 'What is 2+2?', answer: '4', id: 3 };
    expect(mapFields(record, { prompt: 'question', response: 'answer' })).toEqual({ prompt: 'What is 2+2?', response: '4' });
  });

  it('maps messages and keeps only role and content', () => {
    const record = { conversations: [{ role: 'user', content: 'Hi', weight: 1 }, { role: 'assistant', content: 'Hello' }] };
    expect(mapFields(record, { messages: 'conversations' })).toEqual({
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello' },
      ],
    });
  });

  it('names the record and the field in errors', () => {
    expect(() => mapFields({ q: 'x' }, { prompt: 'question', response: 'answer' }, 'd.csv:3')).toThrow(
      'd.csv:3: missing field "question" (record has ["q"])',
    );
    expect(() => mapFields({ question: 1, answer: 'a' }, { prompt: 'question', response: 'answer' }, 'd.jsonl:2')).toThrow(
      'd.jsonl:2: field "question" must be a string, got number',
    );
    expect(() => mapFields({ m: 'hi' }, { messages: 'm' }, 'r')).toThrow('r: field "m" must be an array of {role, content}, got string');
    expect(() => mapFields({ m: [{ role: 'user' }] }, { messages: 'm' }, 'r')).toThrow(
      'r: m[0] must be {role: string, content: string} (OpenAI) or {from: human|gpt|system, value: string} (ShareGPT), got {"role":"user"}',
    );
  });
});
