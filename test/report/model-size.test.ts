import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.ts';
import { writeHfModelDir } from '../../src/model-files/hf-model-dir.ts';
import { SafetensorsFile } from '../../src/formats/safetensors.ts';
import { CausalLM } from '../../src/model/causal-lm.ts';
import { resolveModelConfig } from '../../src/model/config.ts';
import { parseRecipe } from '../../src/recipe/index.ts';
import { studentSize, teacherSize } from '../../src/report/model-size.ts';

let root: string;
const base = { vocabSize: 260, hiddenSize: 16, intermediateSize: 40, numLayers: 3, numHeads: 4, numKvHeads: 2 };

beforeAll(async () => {
  await initBackend('cpu');
  root = mkdtempSync(join(tmpdir(), 'model-size-'));
  writeFileSync(join(root, 'train.jsonl'), '{"text": "hello"}\n');
  const config = resolveModelConfig(base);
  const model = CausalLM.init(config, { seed: 1, std: 0.1 });
  await writeHfModelDir(join(root, 'base'), { config, tensors: model.hfTensors(), dtype: 'F32' });
  model.dispose();
});

function recipe(student: string, teacher = '') {
  return parseRecipe(`name: sizes\n${teacher}student: ${student}\ndata: { train: train.jsonl }\ntrain: { max_steps: 5 }\n`, 'sizes.yaml', root);
}

async function storedParameters(dir: string): Promise<number> {
  const file = await SafetensorsFile.open(join(dir, 'model.safetensors'));
  const total = file.names().reduce((sum, name) => sum + file.info(name).shape.reduce((a, b) => a * b, 1), 0);
  await file.close();
  return total;
}

describe('studentSize', () => {
  it("counts a LoRA student as its base, and its adapter's A and B matrices as what trains", async () => {
    const size = await studentSize(recipe(`{ type: lora, base: base, rank: 4, alpha: 8, targets: [q, v, down] }`), join(root, 'runs', 'lora'));
    const headDim = base.hiddenSize / base.numHeads;
    const perLayer = {
      q: 4 * (base.hiddenSize + base.numHeads * headDim),
      v: 4 * (base.hiddenSize + base.numKvHeads * headDim),
      down: 4 * (base.intermediateSize + base.hiddenSize),
    };
    expect(size).toEqual({
      parameters: await storedParameters(join(root, 'base')),
      trainable: base.numLayers * (perLayer.q + perLayer.v + perLayer.down),
      source: join(root, 'base', 'config.json'),
    });
  });

  it("reads a scratch student's size from its latest checkpoint while it trains", async () => {
    const runDir = join(root, 'runs', 'scratch');
    const checkpoint = join(runDir, 'checkpoints', 'step-00000010');
    mkdirSync(checkpoint, { recursive: true });
    writeFileSync(join(checkpoint, 'trainer_state.json'), JSON.stringify({ step: 10, dataState: null, rngState: 0 }));
    writeFileSync(join(checkpoint, 'config.json'), JSON.stringify(resolveModelConfig(base)));
    const spec = '{ type: scratch, architecture: { hidden_size: 16, intermediate_size: 40, num_layers: 3, num_heads: 4 } }';
    const size = await studentSize(recipe(spec), runDir);
    expect(size).toEqual({ parameters: await storedParameters(join(root, 'base')), trainable: expect.any(Number), source: join(checkpoint, 'config.json') });
    expect(await studentSize(recipe(spec), join(root, 'runs', 'empty'))).toEqual({ parameters: null, reason: 'no final/ or checkpoint yet' });
  });
});

describe('teacherSize', () => {
  it('counts a local teacher, and says why a server teacher has no size', async () => {
    const student = '{ type: scratch, architecture: { hidden_size: 16, intermediate_size: 32, num_layers: 1, num_heads: 2 } }';
    expect(await teacherSize(recipe(student, 'teacher: { provider: local, model: base }\n'))).toMatchObject({ parameters: await storedParameters(join(root, 'base')) });
    const openai = await teacherSize(recipe(student, 'teacher: { provider: openai, model: gpt-x, endpoints: ["http://localhost:1"] }\n'));
    expect(openai).toEqual({ parameters: null, reason: 'gpt-x is served by an OpenAI-compatible server, which does not publish its size' });
    expect(await teacherSize(recipe(student))).toEqual({ parameters: null, reason: 'the recipe has no teacher' });
  });
});
