import { describe, expect, it } from 'vitest';
import { runPaths } from '../../src/run/layout.ts';

describe('runPaths', () => {
  it('lays the run out under <output_dir>/<name>', () => {
    const paths = runPaths('/out', 'tiny');
    expect(paths).toMatchObject({
      root: '/out/tiny',
      recipe: '/out/tiny/recipe.yaml',
      metrics: '/out/tiny/metrics.jsonl',
      checkpoints: '/out/tiny/checkpoints',
      final: '/out/tiny/final',
    });
  });
});
