import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRecipe, parseRecipe, RecipeError } from '../../src/recipe/index.ts';
import { SlmError } from '../../src/util/errors.ts';

const fixtures = join(import.meta.dirname, 'fixtures');
const minimal = readFileSync(join(fixtures, 'minimal.yaml'), 'utf8');

function parse(text: string) {
  return parseRecipe(text, 'recipe.yaml', fixtures, { cwd: '/work/here' });
}

/** The error message parseRecipe throws for `text`. */
function errorOf(text: string): string {
  try {
    parse(text);
  } catch (error) {
    expect(error).toBeInstanceOf(RecipeError);
    return (error as RecipeError).message;
  }
  throw new Error('expected a RecipeError');
}

/** minimal.yaml with `line` added under the top-level `section:` key. */
function withLine(section: string, line: string): string {
  return minimal.replace(`\n${section}:\n`, `\n${section}:\n  ${line}\n`);
}

describe('parseRecipe: valid recipes', () => {
  it('fills every default of a minimal recipe and derives num_kv_heads and head_dim', () => {
    const recipe = parse(minimal);
    expect(recipe).toEqual({
      name: 'tiny',
      seed: 0,
      backend: 'auto',
      outputDir: '/work/here/runs',
      student: {
        type: 'scratch',
        tokenizer: 'byte',
        architecture: {
          hiddenSize: 64,
          intermediateSize: 128,
          numLayers: 2,
          numHeads: 4,
          numKvHeads: 4,
          headDim: 16,
          ropeTheta: 10000,
          ropeScaling: null,
          attentionBias: false,
          tieWordEmbeddings: true,
          maxPositionEmbeddings: 2048,
          rmsNormEps: 1e-5,
        },
        initStd: 0.02,
      },
      data: {
        train: join(fixtures, 'train.jsonl'),
        format: 'auto',
        textField: 'text',
        promptField: 'prompt',
        responseField: 'response',
        messagesField: null,
        promptTemplate: null,
        responseTemplate: null,
        validation: { fraction: 0.05 },
        seqLen: 256,
      },
      train: {
        objective: 'sft',
        maxSteps: 10,
        epochs: null,
        batchSize: 8,
        gradAccum: 1,
        recompute: 'auto',
        lr: 3e-4,
        minLrRatio: 0.1,
        warmupSteps: 0,
        schedule: 'cosine',
        weightDecay: 0.01,
        betas: [0.9, 0.95],
        eps: 1e-8,
        clipGradNorm: 1,
        evalEvery: 100,
        evalBatches: 8,
        checkpointEvery: 100,
        keepCheckpoints: 2,
        logEvery: 10,
        resume: 'auto',
      },
    });
  });

  it('keeps every explicit value and resolves paths against the recipe folder', async () => {
    const recipe = await loadRecipe(join(fixtures, 'full.yaml'));
    if (recipe.student.type !== 'scratch') throw new Error('full.yaml has a scratch student');
    expect(recipe.outputDir).toBe(join(fixtures, 'out'));
    expect(recipe.student.tokenizer).toBe(join(fixtures, 'tokenizer', 'tokenizer.json'));
    expect(recipe.data.validation).toEqual({ path: join(fixtures, 'train.jsonl') });
    expect(recipe.student.architecture).toMatchObject({ numKvHeads: 2, headDim: 32, rmsNormEps: 1e-6 });
    expect(recipe.student.architecture.ropeScaling).toEqual({
      ropeType: 'llama3',
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    expect(recipe.train).toMatchObject({ lr: 1e-3, betas: [0.8, 0.99], clipGradNorm: null, resume: 'never' });
  });

  it('accepts a tokenizer given as a file', () => {
    const recipe = parse(withLine('student', 'tokenizer: tokenizer/tokenizer.json'));
    expect(recipe.student).toMatchObject({ type: 'scratch', tokenizer: join(fixtures, 'tokenizer', 'tokenizer.json') });
  });
});

describe('parseRecipe: errors point at the line and column of the key', () => {
  const cases: [string, string, string][] = [
    [
      'an enum typo',
      withLine('train', 'schedule: cosin'),
      'recipe.yaml:13:13: train.schedule: expected one of cosine | linear | constant, got "cosin"',
    ],
    [
      'a misspelt key (reported instead of the required key it hides)',
      minimal.replace('hidden_size: 64', 'hiden_size: 64'),
      'recipe.yaml:6:5: student.architecture.hiden_size: unknown key (did you mean hidden_size?)',
    ],
    [
      'an unknown key with no close match',
      `${minimal}colour: blue\n`,
      'recipe.yaml:14:1: colour: unknown key (allowed: name, seed, backend, output_dir, teacher, generate, student, data, train, distill, dpo, eval, export)',
    ],
    ['a missing required key', minimal.replace('name: tiny\n', ''), 'recipe.yaml:1:1: name: required, expected a string'],
    ['neither max_steps nor epochs', minimal.replace('  max_steps: 10\n', '  lr: 0.1\n'), 'recipe.yaml:12:1: train.max_steps: required: give max_steps (optimizer steps) or epochs (passes over the data)'],
    ['both max_steps and epochs', withLine('train', 'epochs: 2'), 'recipe.yaml:13:11: train.epochs: give max_steps or epochs, not both (max_steps is 10)'],
    ['a fraction where an integer belongs', minimal.replace('max_steps: 10', 'max_steps: 2.5'), 'recipe.yaml:13:14: train.max_steps: expected an integer or null, got 2.5'],
    ['a string where a number belongs', withLine('train', 'lr: fast'), 'recipe.yaml:13:7: train.lr: expected a number, got "fast"'],
    ['a nullable number', withLine('train', 'clip_grad_norm: off'), 'recipe.yaml:13:19: train.clip_grad_norm: expected a number or null, got "off"'],
    ['an empty value', withLine('train', 'lr:'), 'recipe.yaml:13:6: train.lr: expected a number, got null'],
    ['a bound', minimal.replace('max_steps: 10', 'max_steps: 0'), 'recipe.yaml:13:14: train.max_steps: expected an integer > 0, got 0'],
    ['a list element', withLine('train', 'betas: [0.9, 1.5]'), 'recipe.yaml:13:16: train.betas[1]: expected a number < 1, got 1.5'],
    ['an unknown student type', minimal.replace('type: scratch', 'type: qlora'), 'recipe.yaml:4:9: student.type: expected one of scratch | lora | full, got "qlora"'],
    [
      'a validation fraction out of range',
      withLine('data', 'validation: { fraction: 1 }'),
      'recipe.yaml:11:27: data.validation.fraction: expected a number < 1, got 1',
    ],
    ['a name that is not a folder name', minimal.replace('name: tiny', 'name: my run'), 'recipe.yaml:2:7: name: expected a folder name: letters, digits, ".", "_", "-", got "my run"'],
    [
      'heads that do not divide into kv heads',
      minimal.replace('num_heads: 4', 'num_heads: 4\n    num_kv_heads: 3'),
      'recipe.yaml:10:19: student.architecture.num_kv_heads: num_heads (4) must be a multiple of num_kv_heads (3)',
    ],
    [
      'an odd derived head_dim (pointing at the enclosing key)',
      minimal.replace('hidden_size: 64', 'hidden_size: 60'),
      'recipe.yaml:5:3: student.architecture.head_dim: must be even, got 15',
    ],
    [
      'a hidden size that does not split into heads',
      minimal.replace('hidden_size: 64', 'hidden_size: 66'),
      'recipe.yaml:5:3: student.architecture.head_dim: hidden_size / num_heads = 66 / 4 is not a whole number; set head_dim',
    ],
    ['warmup longer than training', withLine('train', 'warmup_steps: 11'), 'recipe.yaml:13:17: train.warmup_steps: 11 exceeds train.max_steps (10)'],
    ['both validation kinds', withLine('data', 'validation: { fraction: 0.1, path: train.jsonl }'), 'recipe.yaml:11:15: data.validation: either { fraction } or { path }, not both'],
    ['a missing data file', minimal.replace('train: train.jsonl', 'train: missing.jsonl'), `recipe.yaml:11:10: data.train: file not found: ${join(fixtures, 'missing.jsonl')}`],
    ['a folder with no tokenizer.json', withLine('student', 'tokenizer: .'), `recipe.yaml:4:14: student.tokenizer: file not found: ${join(fixtures, 'tokenizer.json')}`],
    [
      'generate without a teacher',
      `${minimal.replace('  train: train.jsonl\n', '  seq_len: 64\n')}generate:\n  prompts: [hi]\n`,
      'recipe.yaml:15:3: generate: needs a `teacher` section: the model that answers the prompts',
    ],
    [
      'a data file and generated data both',
      `${minimal}teacher:\n  provider: ollama\n  model: qwen3\ngenerate:\n  prompts: [hi]\n`,
      'recipe.yaml:11:10: data.train: leave it out: with a `generate` section the train stage reads the generated data',
    ],
    [
      'neither a data file nor a generate section',
      minimal.replace('  train: train.jsonl\n', '  seq_len: 64\n'),
      'recipe.yaml:11:3: data: needs `train` (a JSONL file) or `mix` (several), or the recipe needs a `generate` section',
    ],
    [
      'an openai teacher without endpoints',
      `${minimal}teacher:\n  provider: openai\n  model: gpt\n`,
      'recipe.yaml:14:1: teacher.endpoints: an openai teacher needs the server base URLs, e.g. [http://127.0.0.1:8000/v1]',
    ],
    [
      'an API key written in place of its variable name (not echoed back: it may be a secret)',
      `${minimal}teacher:\n  provider: openai\n  model: gpt\n  endpoints: [http://h/v1]\n  api_key_env: sk-abc123\n`,
      'recipe.yaml:18:16: teacher.api_key_env: expected the name of an environment variable, like OPENAI_API_KEY',
    ],
    [
      'an answer filter without a reference field',
      `${minimal.replace('  train: train.jsonl\n', '  seq_len: 64\n')}teacher:\n  provider: ollama\n  model: q\ngenerate:\n  prompts: [hi]\n  filters:\n    answer: gsm8k\n`,
      'recipe.yaml:20:13: generate.filters.answer: needs generate.reference_field: the record field holding the reference answer',
    ],
    [
      'a filter regex that does not compile',
      `${minimal.replace('  train: train.jsonl\n', '  seq_len: 64\n')}teacher:\n  provider: ollama\n  model: q\ngenerate:\n  prompts: [hi]\n  filters:\n    require: "(unclosed"\n`,
      'recipe.yaml:20:14: generate.filters.require: not a valid regular expression: Invalid regular expression: /(unclosed/: Unterminated group',
    ],
    [
      'label mode with a server teacher',
      `${minimal.replace('  train: train.jsonl\n', '  seq_len: 64\n')}teacher:\n  provider: ollama\n  model: q\ngenerate:\n  mode: label\n  prompts: train.jsonl\n`,
      'recipe.yaml:18:9: generate.mode: label needs teacher.provider local (servers cannot score given text token by token), got ollama',
    ],
    [
      'more soft labels than servers return',
      `${minimal.replace('  train: train.jsonl\n', '  seq_len: 64\n')}teacher:\n  provider: ollama\n  model: q\ngenerate:\n  prompts: [hi]\n  k: 50\n`,
      'recipe.yaml:19:6: generate.k: expected an integer <= 20, got 50',
    ],
    [
      'online distillation without a local teacher',
      `${minimal}teacher:\n  provider: ollama\n  model: q\ndistill:\n  labels: online\n`,
      'recipe.yaml:18:11: distill.labels: online needs teacher.provider local: the teacher runs next to the student at every step',
    ],
    [
      'on-policy distillation without a local teacher',
      `${minimal}distill:\n  on_policy:\n    lambda: 0.5\n`,
      'recipe.yaml:16:13: distill.on_policy.lambda: on-policy distillation needs teacher.provider local, to score what the student samples',
    ],
    ['a divergence typo', `${minimal}distill:\n  divergence: kl\n`, 'recipe.yaml:15:15: distill.divergence: expected one of forward_kl | reverse_kl | jsd, got "kl"'],
    ['a duplicate key', minimal.replace('name: tiny', 'name: tiny\nname: again'), 'recipe.yaml:3:1: invalid YAML: Map keys must be unique'],
    ['an empty file', '', 'recipe.yaml:1:1: the recipe is empty'],
    [
      'an alias bomb',
      `a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n${minimal}`,
      'recipe.yaml:1:1: invalid YAML: its aliases (*name) expand to far more values than the file holds; write the repeated values out',
    ],
    ['a list instead of a mapping', '- name\n', 'recipe.yaml:1:1: expected a mapping, got a list of 1'],
    ['a dpo section without the objective', `${minimal}dpo:\n  beta: 0.2\n`, 'recipe.yaml:15:3: dpo: applies to train.objective: dpo; set it, or remove this section'],
    [
      'dpo beside distillation',
      `${withLine('train', 'objective: dpo')}distill:\n  alpha: 1\n`,
      "recipe.yaml:16:3: distill: leave it out: train.objective dpo learns from preference pairs, not from the teacher's distributions",
    ],
    [
      'dpo on data read as text',
      withLine('data', 'format: text').replace('  max_steps: 10', '  objective: dpo\n  max_steps: 10'),
      'recipe.yaml:11:11: data.format: train.objective dpo learns from preference pairs, read by their fields (prompt, chosen, rejected): leave format auto',
    ],
    [
      'label smoothing with ipo',
      `${withLine('train', 'objective: dpo')}dpo:\n  loss: ipo\n  label_smoothing: 0.1\n`,
      'recipe.yaml:17:20: dpo.label_smoothing: applies to the sigmoid losses, not ipo',
    ],
    [
      'a reference model that is not there',
      `${withLine('train', 'objective: dpo')}dpo:\n  reference: missing-model\n`,
      `recipe.yaml:16:14: dpo.reference: file not found: ${join(fixtures, 'missing-model')}`,
    ],
  ];

  it.each(cases)('%s', (_, text, message) => {
    expect(errorOf(text)).toBe(message);
  });

  it('reports the first problem in file order and counts the rest', () => {
    const text = withLine('train', 'lr: -1').replace('num_layers: 2', 'num_layers: two');
    const error = (() => {
      try {
        parse(text);
      } catch (e) {
        return e as RecipeError;
      }
    })();
    expect(error).toBeInstanceOf(SlmError);
    expect(error?.code).toBe('ERR_RECIPE');
    expect(error?.message).toBe('recipe.yaml:8:17: student.architecture.num_layers: expected an integer, got "two" (and 1 more problem)');
    expect(error).toMatchObject({ file: 'recipe.yaml', line: 8, column: 17, keyPath: 'student.architecture.num_layers' });
    expect(error?.issues.map((issue) => issue.keyPath)).toEqual(['student.architecture.num_layers', 'train.lr']);
  });
});

describe('loadRecipe', () => {
  it('names the file as given when it cannot be read', async () => {
    await expect(loadRecipe('no/such/recipe.yaml')).rejects.toThrow('no/such/recipe.yaml: cannot read the recipe: no such file');
  });

  it('resolves relative paths against the file, wherever the process runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'recipe-'));
    writeFileSync(join(dir, 'data.jsonl'), '{"text": "x"}\n');
    writeFileSync(join(dir, 'r.yaml'), minimal.replace('train: train.jsonl', 'train: data.jsonl').replace('name: tiny', 'name: tiny\noutput_dir: ../elsewhere'));
    const recipe = await loadRecipe(join(dir, 'r.yaml'));
    expect(recipe.data.train).toBe(join(dir, 'data.jsonl'));
    expect(recipe.outputDir).toBe(join(dir, '..', 'elsewhere'));
  });
});

describe('a LoRA student', () => {
  const lora = (base: string, extra = '') => `name: tiny-lora
student:
  type: lora
  base: ${base}
${extra}data:
  train: train.jsonl
train:
  max_steps: 2
`;

  it('fills PEFT-like defaults, resolves a base path against the recipe folder and keeps ollama: names', () => {
    const recipe = parseRecipe(lora('ollama:llama3.2:1b'), 'recipe.yaml', fixtures);
    expect(recipe.student).toEqual({ type: 'lora', base: 'ollama:llama3.2:1b', rank: 16, alpha: 32, dropout: 0, targets: ['q', 'k', 'v', 'o'], rslora: false, weights: 'auto' });
    const local = parseRecipe(lora('tokenizer', '  targets: all-linear\n'), 'recipe.yaml', fixtures);
    expect(local.student).toMatchObject({ base: join(fixtures, 'tokenizer'), targets: 'all-linear' });
  });

  it('accepts a base not made yet when the teacher\'s prerequisite recipe makes it (the model it trains)', () => {
    const teacher = 'teacher:\n  provider: local\n  model: runs/distilled/final\n  recipe: full.yaml\n';
    const recipe = parseRecipe(`${teacher}${lora('runs/distilled/final')}`, 'recipe.yaml', fixtures);
    expect(recipe.student).toMatchObject({ base: join(fixtures, 'runs/distilled/final') });
    expect(() => parseRecipe(`${teacher}${lora('runs/other/final')}`, 'recipe.yaml', fixtures)).toThrow(`student.base: file not found: ${join(fixtures, 'runs/other/final')}`);
  });

  it('reports a missing base and an unknown target at their keys', () => {
    expect(() => parseRecipe(lora('nowhere'), 'recipe.yaml', fixtures)).toThrow(`recipe.yaml:4:9: student.base: file not found: ${join(fixtures, 'nowhere')}`);
    expect(() => parseRecipe(lora('ollama:x', '  targets: [q, qkv]\n'), 'recipe.yaml', fixtures)).toThrow('recipe.yaml:5:16: student.targets[1]');
  });
});

describe('a full student', () => {
  const full = (base: string, extra = '') => `name: tiny-full
student:
  type: full
  base: ${base}
data:
  train: train.jsonl
train:
  max_steps: 2
${extra}`;

  it('resolves its base like a LoRA base, takes eval target base, and names a missing base at its key', () => {
    const recipe = parseRecipe(full('tokenizer', 'eval:\n  targets: [student, base]\n  suites: [{ suite: gsm8k, data: train.jsonl }]\n'), 'recipe.yaml', fixtures);
    expect(recipe.student).toEqual({ type: 'full', base: join(fixtures, 'tokenizer') });
    expect(recipe.eval?.targets).toEqual(['student', 'base']);
    expect(() => parseRecipe(full('nowhere'), 'recipe.yaml', fixtures)).toThrow(`recipe.yaml:4:9: student.base: file not found: ${join(fixtures, 'nowhere')}`);
    expect(() => parseRecipe(full('tokenizer', '  rank: 4\n'), 'recipe.yaml', fixtures)).toThrow('train.rank: unknown key');
  });
});

describe('data.mix', () => {
  const withMix = (mix: string, train = '') => minimal.replace('data:\n  train: train.jsonl\n', `data:\n${train}  mix:\n${mix}`);

  it('resolves each file against the recipe folder, with weight 1 and the data-level format settings by default', () => {
    const recipe = parse(withMix('    - { path: train.jsonl, weight: 2.5, format: prompt_response, prompt_field: q }\n    - { path: train.jsonl }\n'));
    expect(recipe.data.train).toBeUndefined();
    expect(recipe.data.mix).toEqual([
      { path: join(fixtures, 'train.jsonl'), weight: 2.5, format: 'prompt_response', promptField: 'q' },
      { path: join(fixtures, 'train.jsonl'), weight: 1 },
    ]);
  });

  it('is refused beside train, and a missing file is named at its key', () => {
    expect(errorOf(withMix('    - { path: train.jsonl }\n', '  train: train.jsonl\n'))).toMatch(/^recipe\.yaml:\d+:\d+: data\.mix: give train or mix, not both$/);
    expect(errorOf(withMix('    - { path: train.jsonl }\n    - { path: nowhere.jsonl }\n'))).toBe(`recipe.yaml:13:15: data.mix[1].path: file not found: ${join(fixtures, 'nowhere.jsonl')}`);
  });
});
