/**
 * recipes/lora-chat.yaml as shipped, on a tiny base that has a ChatML chat template, set by command-line
 * overrides: chat data through the template, assistant-only targets, epochs, a PEFT adapter.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHATML_TEMPLATE, chatExample, chatRenderer } from '../../datasets/chat-examples.ts';
import { messagesField } from '../../datasets/record-fields.ts';
import { initBackend } from '../../src/backend/index.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { loadRecipe } from '../../src/recipe/index.ts';
import { readMetrics } from '../../src/run/metrics.ts';
import { runRecipe } from '../../src/stages/run-recipe.ts';
import { BYTE_LEVEL_TOKENIZER_CONFIG } from '../../src/tokenizer/byte-level.ts';
import { tokenizerFromJson } from '../../src/tokenizer/hf-tokenizer.ts';
import { stepsForEpochs } from '../../trainers/schedule.ts';
import { chatmlTokenizerJson } from '../helpers/chatml-tokenizer.ts';

await initBackend('wasm');

const RECIPE = resolve(import.meta.dirname, '../../recipes/lora-chat.yaml');

/** A byte-level base whose tokenizer has ChatML's markers as special tokens and a ChatML chat template. */
async function chatBase(dir: string): Promise<string> {
  const tokenizerConfig = { ...BYTE_LEVEL_TOKENIZER_CONFIG, chat_template: CHATML_TEMPLATE };
  const config = resolveModelConfig({ vocabSize: 261, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, tieWordEmbeddings: true, maxPositionEmbeddings: 512 });
  const model = CausalLM.init(config, { seed: 1, std: 0.1 });
  const base = join(dir, 'chat-base');
  await writeHfModelDir(base, { config, tensors: model.hfTensors(), dtype: 'F32', tokenizerJson: chatmlTokenizerJson(), tokenizerConfig });
  model.dispose();
  return base;
}

describe('recipes/lora-chat.yaml', () => {
  it('trains LoRA on its chat data through the base chat template, by epochs, and writes the adapter', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chat-recipe-'));
    const base = await chatBase(dir);
    const recipe = await loadRecipe(RECIPE, { overrides: [`student.base=${base}`, `output_dir=${dir}`, 'student.rank=4', 'train.epochs=2', 'train.batch_size=2', 'data.seq_len=320', 'export.formats=[peft]'] });
    const lines: string[] = [];
    const logger = { info: (line: string) => void lines.push(line), warn: (line: string) => void lines.push(line) };
    const result = await runRecipe({ ...recipe, backend: 'wasm' }, { logger, json: false, progressStream: { write: (text: string) => void lines.push(text) } });

    // The training windows are the chat examples, one or more per window; the steps follow the epochs.
    const announced = lines.map((line) => /train\.epochs 2: (\d+) steps over (\d+) training windows/.exec(line)).find(Boolean);
    expect(announced).toBeDefined();
    expect(Number(announced![1])).toBe(stepsForEpochs(2, { windows: Number(announced![2]), batchSize: 2, gradAccum: 1 }));
    const metrics = readMetrics(join(result.runDir, 'metrics.jsonl'));
    expect(metrics.at(-1)!.step).toBe(Number(announced![1]));
    expect(metrics.every((m) => Number.isFinite(m.loss))).toBe(true);
    expect(existsSync(join(result.runDir, 'final', 'adapter_model.safetensors'))).toBe(true);

    // What it trained on: every conversation of the file, rendered with the base's template, with targets
    // exactly on the assistant turns (checked token by token in test/datasets/chat-examples.test.ts).
    const tokenizer = tokenizerFromJson(readFileSync(join(base, 'tokenizer.json'), 'utf8'), { eos_token: '<|im_end|>' });
    const records = readFileSync(recipe.data.train!, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const render = chatRenderer(CHATML_TEMPLATE, tokenizer);
    for (const [i, record] of records.entries()) {
      const messages = messagesField(record, 'messages' in record ? 'messages' : 'conversations', `line ${i + 1}`);
      const { ids, lossMask } = chatExample(messages, render, tokenizer, `line ${i + 1}`);
      // Byte-level on ASCII data: per assistant turn, one target per byte of its content, <|im_end|> and "\n".
      const expected = messages.filter((m) => m.role === 'assistant').reduce((n, m) => n + m.content.length + 2, 0);
      expect(lossMask.reduce((a, b) => a + b, 0)).toBe(expected);
      expect(ids.length).toBeLessThanOrEqual(320);
    }
  }, 120_000);
});
