import { describe, expect, it } from 'vitest';
import { compileChatTemplate, renderChat } from '../../datasets/chat-template.ts';

// Qwen2-Instruct's ChatML template, without its default-system-prompt branch.
const CHATML = String.raw`{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`;

// Meta-Llama-3-8B-Instruct's template.
const LLAMA3 = String.raw`{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}`;

const conversation = [
  { role: 'system', content: 'You are helpful.' },
  { role: 'user', content: '  What is 2+2?\n' },
  { role: 'assistant', content: '4' },
];

describe('renderChat', () => {
  it('renders a ChatML conversation exactly', () => {
    expect(renderChat(CHATML, conversation)).toBe(
      '<|im_start|>system\nYou are helpful.<|im_end|>\n' +
        '<|im_start|>user\n  What is 2+2?\n<|im_end|>\n' +
        '<|im_start|>assistant\n4<|im_end|>\n',
    );
  });

  it('adds the generation prompt only when asked', () => {
    const prompt = [{ role: 'user', content: 'Hi' }];
    expect(renderChat(CHATML, prompt, { addGenerationPrompt: true })).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(renderChat(CHATML, prompt)).toBe('<|im_start|>user\nHi<|im_end|>\n');
  });

  it('renders Llama 3 with its BOS token and trimmed contents', () => {
    const render = compileChatTemplate(LLAMA3);
    expect(render(conversation.slice(0, 2), { addGenerationPrompt: true, bosToken: '<|begin_of_text|>' })).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('passes the EOS token to templates that use it', () => {
    const template = '{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}';
    expect(renderChat(template, [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }], { eosToken: '</s>' })).toBe(
      'a</s>b</s>',
    );
  });

  it('reports a template that does not parse', () => {
    expect(() => renderChat('{% for m in messages %}', [])).toThrow(/chat template: cannot parse/);
  });
});
