import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRecipe, RecipeError } from '../../src/recipe/index.ts';
import { applyOverrides, parseOverride } from '../../src/recipe/overrides.ts';
import { SlmError } from '../../src/util/errors.ts';

const fixtures = join(import.meta.dirname, 'fixtures');
const minimal = readFileSync(join(fixtures, 'minimal.yaml'), 'utf8');

function parse(overrides: string[], text = minimal) {
  return parseRecipe(text, 'recipe.yaml', fixtures, { cwd: '/work/here', overrides });
}

function errorOf(overrides: string[], text = minimal): SlmError {
  try {
    parse(overrides, text);
  } catch (error) {
    expect(error).toBeInstanceOf(SlmError);
    return error as SlmError;
  }
  throw new Error('expected an error');
}

describe('recipe overrides', () => {
  it('set keys as YAML values before validation, defaults filled in around them, later ones winning', () => {
    const recipe = parse(['train.lr=1e-4', 'train.max_steps=20', 'student.architecture.num_layers=3', 'train.max_steps=30', 'name=tiny-lr-1e-4']);
    expect(recipe.train.lr).toBe(1e-4);
    expect(recipe.train.maxSteps).toBe(30);
    expect(recipe.student.type === 'scratch' && recipe.student.architecture.numLayers).toBe(3);
    expect(recipe.name).toBe('tiny-lr-1e-4');
    // Untouched keys keep the file's values and the defaults.
    expect(recipe.student.type === 'scratch' && recipe.student.architecture.hiddenSize).toBe(64);
    expect(parse([]).train.lr).toBe(3e-4);
  });

  it('are validated as the file is, and a problem names the override instead of a line', () => {
    const wrongType = errorOf(['train.max_steps=ten']);
    expect(wrongType).toBeInstanceOf(RecipeError);
    expect(wrongType.message).toMatch(/^recipe\.yaml: override train\.max_steps=ten: train\.max_steps: .*got "ten"/);
    expect(errorOf(['train.lrr=1e-4']).message).toBe('recipe.yaml: override train.lrr=1e-4: train.lrr: unknown key (did you mean lr?)');
    expect(errorOf(['train.lr=-1']).message).toMatch(/^recipe\.yaml: override train\.lr=-1: train\.lr: /);
    // A value set whole is named for the problems inside it.
    expect(errorOf(['student.architecture={hidden_size: 64}']).message).toMatch(/^recipe\.yaml: override student\.architecture=\{hidden_size: 64\}: student\.architecture\./);
  });

  it("still points at the file's line for problems the overrides did not make", () => {
    const error = errorOf(['train.lr=1e-4'], minimal.replace('max_steps: 10', 'max_steps: ten'));
    expect(error.message).toMatch(/^recipe\.yaml:\d+:\d+: train\.max_steps: /);
  });

  it('refuse what is not key.path=value, a value that is not YAML, and a path through a value', () => {
    expect(() => parseOverride('train.lr')).toThrow('override "train.lr": expected key.path=value, such as train.lr=1e-4 or student.rank=32');
    expect(() => parseOverride('=3')).toThrow(/expected key\.path=value/);
    expect(() => parseOverride('train..lr=3')).toThrow(/expected key\.path=value/);
    expect(() => parseOverride('train.lr=[1, 2')).toThrow(/^override train\.lr=\[1, 2: the value is not valid YAML/);
    expect(errorOf(['name.first=x']).message).toBe('override name.first=x: cannot set first inside the value "tiny"');
    expect(errorOf(['train.0=x']).message).toBe('override train.0=x: there is no item 0 to set (a map)');
  });

  it('index lists and leave the data they were applied to as it was', () => {
    const data = { data: { mix: [{ path: 'a', weight: 1 }, { path: 'b', weight: 1 }] } };
    const changed = applyOverrides(data, [parseOverride('data.mix.1.weight=3'), parseOverride('data.extra.deep=true')]);
    expect(changed).toEqual({ data: { mix: [{ path: 'a', weight: 1 }, { path: 'b', weight: 3 }], extra: { deep: true } } });
    expect(data.data.mix[1].weight).toBe(1);
    expect(() => applyOverrides(data, [parseOverride('data.mix.2.weight=3')])).toThrow('override data.mix.2.weight=3: there is no item 2 to set (a list of 2)');
  });
});
