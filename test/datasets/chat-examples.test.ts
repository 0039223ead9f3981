import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chatExample, chatRenderer, CHATML_TEMPLATE } from '../../datasets/chat-examples.ts';
import { compileChatTemplate } from '../../datasets/chat-template.ts';
import type { ChatMessage } from '../../datasets/record-fields.ts';
import { readTextExamples } from '../../datasets/text-examples.ts';
import { createByteLevelTokenizer } from '../../src/tokenizer/byte-level.ts';
import { tokenizerFromJson } from '../../src/tokenizer/hf-tokenizer.ts';
import type { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { chatmlTokenizerJson } from '../helpers/chatml-tokenizer.ts';

const CONVERSATION: ChatMessage[] = [
  { role: 'system', content: 'You add numbers.' },
  { role: 'user', content: '2+3?' },
  { role: 'assistant', content: '5' },
  { role: 'user', content: 'and 4+4?' },
  { role: 'assistant', content: 'It is 8.' },
];

/** The byte-level tokenizer with ChatML's markers as special tokens (one id each). */
function chatmlTokenizer(): Tokenizer {
  return tokenizerFromJson(chatmlTokenizerJson(), { eos_token: '<|im_end|>' });
}

/**
 * The expected mask from the rendering alone: the characters each assistant turn adds after the generation
 * prompt (its content, <|im_end|> and the newline), turned into token positions by tokenizing prefixes.
 */
function expectedTargets(tokenizer: Tokenizer, messages: ChatMessage[]): string[] {
  const render = compileChatTemplate(CHATML_TEMPLATE);
  return messages.flatMap((m, i) => (m.role === 'assistant' ? [render(messages.slice(0, i + 1)).slice(render(messages.slice(0, i), { addGenerationPrompt: true }).length)] : []));
}

/** The runs of consecutive target tokens, decoded. */
function targetRuns(tokenizer: Tokenizer, ids: number[], mask: number[]): string[] {
  const runs: number[][] = [];
  mask.forEach((m, t) => {
    if (m === 0) return;
    if (t > 0 && mask[t - 1] === 1) runs.at(-1)!.push(ids[t]);
    else runs.push([ids[t]]);
  });
  return runs.map((run) => tokenizer.decode(run));
}

describe('chat examples', () => {
  it.each([
    ['byte-level, markers as plain bytes', createByteLevelTokenizer()],
    ['markers as special tokens', chatmlTokenizer()],
  ])('put the loss on each assistant turn and its end-of-turn marker only, token by token (%s)', (_, tokenizer) => {
    const render = chatRenderer(null, tokenizer);
    const { ids, lossMask } = chatExample(CONVERSATION, render, tokenizer, 'test');
    // The ids are the template's rendering, special-token strings parsed.
    expect(ids).toEqual(tokenizer.encode(render(CONVERSATION), { parseSpecialTokens: true }));
    expect(tokenizer.decode(ids)).toBe(render(CONVERSATION));
    const targets = expectedTargets(tokenizer, CONVERSATION);
    expect(targets).toEqual(['5<|im_end|>\n', 'It is 8.<|im_end|>\n']);
    expect(targetRuns(tokenizer, ids, lossMask)).toEqual(targets);
  });

  it('marks the end-of-turn marker as one special token where the tokenizer has it', () => {
    const tokenizer = chatmlTokenizer();
    const { ids, lossMask } = chatExample(CONVERSATION, chatRenderer(null, tokenizer), tokenizer, 'test');
    const end = tokenizer.idOf('<|im_end|>')!;
    const targetEnds = ids.filter((id, t) => id === end && lossMask[t] === 1);
    const promptEnds = ids.filter((id, t) => id === end && lossMask[t] === 0);
    expect(targetEnds).toHaveLength(2); // the assistant turns'
    expect(promptEnds).toHaveLength(3); // the system's and users'
  });

  it('refuse a conversation without an assistant turn, and a template that does not render turn by turn', () => {
    const tokenizer = createByteLevelTokenizer();
    expect(() => chatExample(CONVERSATION.slice(0, 2), chatRenderer(null, tokenizer), tokenizer, 'data.jsonl:3')).toThrow(
      'data.jsonl:3: the conversation has no assistant message to learn from',
    );
    const reversed = '{% for message in messages | reverse %}{{ message.content }};{% endfor %}';
    expect(() => chatExample(CONVERSATION, chatRenderer(reversed, tokenizer), tokenizer, 'data.jsonl:4')).toThrow(
      'data.jsonl:4: the chat template does not render this conversation turn by turn (message 2)',
    );
  });

  it('read OpenAI messages and ShareGPT conversations from files into the same examples', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chat-'));
    const sharegpt = CONVERSATION.map(({ role, content }) => ({ from: { system: 'system', user: 'human', assistant: 'gpt' }[role], value: content }));
    writeFileSync(join(dir, 'openai.jsonl'), `${JSON.stringify({ messages: CONVERSATION })}\n`);
    writeFileSync(join(dir, 'sharegpt.jsonl'), `${JSON.stringify({ conversations: sharegpt })}\n`);
    writeFileSync(join(dir, 'named.jsonl'), `${JSON.stringify({ dialog: CONVERSATION })}\n`);
    const tokenizer = chatmlTokenizer();
    const [openai, shared, named] = await Promise.all([
      readTextExamples(join(dir, 'openai.jsonl'), tokenizer),
      readTextExamples(join(dir, 'sharegpt.jsonl'), tokenizer),
      readTextExamples(join(dir, 'named.jsonl'), tokenizer, { format: 'messages', messagesField: 'dialog' }),
    ]);
    expect([openai.format, shared.format, named.format]).toEqual(['messages', 'messages', 'messages']);
    expect(shared.examples[0].example).toEqual(openai.examples[0].example);
    expect(named.examples[0].example).toEqual(openai.examples[0].example);
    writeFileSync(join(dir, 'bad.jsonl'), `${JSON.stringify({ messages: [{ from: 'robot', value: 'x' }] })}\n`);
    await expect(readTextExamples(join(dir, 'bad.jsonl'), tokenizer)).rejects.toThrow(/bad\.jsonl:1: messages\[0\] must be \{role: string, content: string\} \(OpenAI\) or \{from: human\|gpt\|system, value: string\} \(ShareGPT\)/);
  });
});
