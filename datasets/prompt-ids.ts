/**
 * The token ids a model is prompted with: the conversation rendered by its chat template (ending with the
 * opening of the assistant's turn), or, for a model without one, the plain prompt after its BOS token.
 * The local teacher and the student encode prompts with this one function, so a student trains on
 * prompts in exactly the form it will later be asked them.
 */
import type { Tokenizer } from '../src/tokenizer/tokenizer.ts';
import { compileChatTemplate } from './chat-template.ts';
import { DatasetError } from './errors.ts';
import type { ChatMessage } from './record-fields.ts';

export interface PromptInput {
  prompt?: string;
  messages?: ChatMessage[];
  system?: string;
}

export type PromptEncoder = (input: PromptInput) => number[];

export function promptEncoder(tokenizer: Tokenizer, chatTemplate: string | null, modelName: string): PromptEncoder {
  if (chatTemplate) {
    const render = compileChatTemplate(chatTemplate);
    const special = (id: number | null) => (id === null ? undefined : tokenizer.decode([id]));
    return (input) => {
      const text = render(conversation(input), { addGenerationPrompt: true, bosToken: special(tokenizer.bosId), eosToken: special(tokenizer.eosId) });
      return tokenizer.encode(text, { addSpecialTokens: false, parseSpecialTokens: true });
    };
  }
  return (input) => {
    if (input.prompt === undefined || input.messages !== undefined) {
      throw new DatasetError(`${modelName}: the model has no chat template, so it takes a plain \`prompt\`, not messages`);
    }
    return tokenizer.encode(plainPrompt({ ...input, prompt: input.prompt }), { addSpecialTokens: true });
  };
}

/** The text a model without a chat template is prompted with: the system prompt, a blank line, the prompt. */
export function plainPrompt(input: { prompt: string; system?: string }): string {
  return input.system === undefined ? input.prompt : `${input.system}\n\n${input.prompt}`;
}

/** The messages an input stands for, with `system` first when given. */
export function conversation(input: PromptInput): ChatMessage[] {
  const body = input.messages ?? [{ role: 'user' as const, content: input.prompt ?? '' }];
  return input.system === undefined ? body : [{ role: 'system', content: input.system }, ...body];
}
