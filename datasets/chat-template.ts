/**
 * Renders a conversation with a model's chat template (the Jinja `chat_template` of tokenizer_config.json)
 * through @huggingface/jinja, with the variables transformers' `apply_chat_template` passes.
 */
import { Template } from '@huggingface/jinja';
import { DatasetError } from './errors.ts';
import type { ChatMessage } from './record-fields.ts';

export interface ChatRenderOptions {
  /** Append the opening of an assistant turn, for prompting a model to answer. */
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
}

/** Parse once, render many: a template is compiled when this is called. */
export function compileChatTemplate(source: string): (messages: readonly ChatMessage[], options?: ChatRenderOptions) => string {
  let template: Template;
  try {
    template = new Template(source);
  } catch (error) {
    throw new DatasetError(`chat template: cannot parse (${(error as Error).message})`);
  }
  return (messages, options = {}) => {
    try {
      return template.render({
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? false,
        bos_token: options.bosToken ?? '',
        eos_token: options.eosToken ?? '',
      });
    } catch (error) {
      throw new DatasetError(`chat template: cannot render (${(error as Error).message})`);
    }
  };
}

export function renderChat(source: string, messages: readonly ChatMessage[], options: ChatRenderOptions = {}): string {
  return compileChatTemplate(source)(messages, options);
}
