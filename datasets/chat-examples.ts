/**
 * Chat records -> training examples with the loss on the assistant's turns only, as TRL's
 * `assistant_only_loss` and Axolotl's `train_on_inputs: false` give it.
 *
 * A record holds OpenAI `messages` ([{role, content}]) or ShareGPT `conversations` ([{from, value}], from
 * human / gpt / system; see record-fields.ts). The whole conversation is rendered with the model's chat template and tokenized
 * as one text (special-token strings parsed); each assistant turn's targets are the tokens between the
 * rendering of the turns before it with the generation prompt and the rendering through it, so a turn's
 * targets are its content and the template's end-of-turn marker, and never the prompt the template adds.
 */
import type { Tokenizer } from '../src/tokenizer/tokenizer.ts';
import type { TextExample } from '../trainers/packing.ts';
import { compileChatTemplate, type ChatRenderOptions } from './chat-template.ts';
import { DatasetError } from './errors.ts';
import type { ChatMessage } from './record-fields.ts';

/** ChatML, the template TRL and Axolotl fall back to when a tokenizer has none (scratch students). */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/** The record fields chat data may come in, tried in order when none is named. */
export const MESSAGES_FIELDS = ['messages', 'conversations'] as const;

export type ChatRenderer = (messages: readonly ChatMessage[], options?: ChatRenderOptions) => string;

/** A renderer for `template` (the model's chat template; ChatML when null), with the tokenizer's BOS and EOS. */
export function chatRenderer(template: string | null, tokenizer: Tokenizer): ChatRenderer {
  const render = compileChatTemplate(template ?? CHATML_TEMPLATE);
  const token = (id: number | null) => (id === null ? '' : tokenizer.decode([id]));
  const special = { bosToken: token(tokenizer.bosId), eosToken: token(tokenizer.eosId) };
  return (messages, options = {}) => render(messages, { ...special, ...options });
}

/**
 * The conversation rendered and tokenized, with targets on the assistant turns; with `fromMessage`, only
 * on those at that index or later (a preference pair's completion after its shared prompt turns).
 */
export function chatExample(messages: readonly ChatMessage[], render: ChatRenderer, tokenizer: Tokenizer, where: string, fromMessage = 0): TextExample {
  const encode = (text: string) => tokenizer.encode(text, { parseSpecialTokens: true });
  const full = render(messages);
  const ids = encode(full);
  const lossMask = new Array<number>(ids.length).fill(0);
  let assistantTurns = 0;
  messages.forEach((message, i) => {
    if (message.role !== 'assistant' || i < fromMessage) return;
    assistantTurns++;
    const before = render(messages.slice(0, i), { addGenerationPrompt: true });
    const through = render(messages.slice(0, i + 1));
    if (!full.startsWith(before) || !full.startsWith(through)) {
      throw new DatasetError(`${where}: the chat template does not render this conversation turn by turn (message ${i}), so its assistant turns cannot be told apart`);
    }
    const start = Math.max(1, commonPrefixLength(encode(before), ids));
    const end = commonPrefixLength(encode(through), ids);
    for (let t = start; t < end; t++) lossMask[t] = 1;
  });
  if (assistantTurns === 0) {
    throw new DatasetError(`${where}: the conversation has no assistant message to learn from${fromMessage > 0 ? ` after message ${fromMessage - 1}` : ''}`);
  }
  return { ids, lossMask };
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}
