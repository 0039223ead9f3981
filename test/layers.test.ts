/**
 * The folders are layers: a file imports from its own folder or from folders below it, never above. The
 * order follows the data flow (recipe -> teacher -> data -> trainer -> eval -> export): each stage sits over
 * what it reads, the run directory and the typed recipe under every stage, the model, file formats, backend
 * and utilities at the bottom. README.md's layout section lists the same folders in the same order.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

/** Top to bottom. `src` alone is the public API file, src/index.ts. */
const LAYERS = [
  'src',
  'src/cli',
  'src/bench',
  'src/stages',
  'src/report',
  'src/eval',
  'src/teachers',
  'datasets',
  'trainers',
  'src/export',
  'src/run',
  'src/recipe',
  'src/model-files',
  'src/model',
  'src/tokenizer',
  'src/formats',
  'src/backend',
  'src/util',
];

const CODE_ROOTS = ['src', 'trainers', 'datasets'];
const CODE_FILE = /\.(ts|mts|js|mjs|cjs)$/;

function codeFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return codeFiles(path);
    return CODE_FILE.test(entry.name) ? [path] : [];
  });
}

/** The layer a file belongs to: the longest listed folder holding it. */
function layerOf(file: string): string {
  const path = relative(ROOT, file);
  const holders = LAYERS.filter((layer) => (layer === 'src' ? path === 'src/index.ts' : path.startsWith(`${layer}/`)));
  return holders.sort((a, b) => b.length - a.length)[0] ?? '(no layer)';
}

/** Relative imports of a file: static, dynamic, re-exports and require, as TypeScript's own scanner sees them. */
function relativeImports(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return importedFiles.map((imported) => imported.fileName).filter((name) => name.startsWith('.'));
}

interface Edge {
  from: string;
  to: string;
}

function importEdges(): Edge[] {
  return CODE_ROOTS.flatMap((root) => codeFiles(join(ROOT, root))).flatMap((file) =>
    relativeImports(file).map((name) => ({ from: file, to: resolve(dirname(file), name) })),
  );
}

describe('folder layers', () => {
  const edges = importEdges();

  it('puts every code file in a listed layer', () => {
    const unplaced = CODE_ROOTS.flatMap((root) => codeFiles(join(ROOT, root)))
      .filter((file) => layerOf(file) === '(no layer)')
      .map((file) => relative(ROOT, file));
    expect(unplaced).toEqual([]);
  });

  it('imports only from the same layer or one below', () => {
    const upward = edges
      .filter(({ from, to }) => LAYERS.indexOf(layerOf(to)) < LAYERS.indexOf(layerOf(from)))
      .map(({ from, to }) => `${relative(ROOT, from)} (${layerOf(from)}) imports ${relative(ROOT, to)} (${layerOf(to)}, above)`);
    expect(upward).toEqual([]);
  });

  it('sees the imports it checks (a scanner that found none would pass anything)', () => {
    const crossing = edges.filter(({ from, to }) => layerOf(from) !== layerOf(to));
    expect(crossing.length).toBeGreaterThan(100);
    expect(crossing.some(({ from, to }) => layerOf(from) === 'src/stages' && layerOf(to) === 'trainers')).toBe(true);
  });

  it('matches the layout section of README.md, folder for folder and in order', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Layout'), readme.indexOf('\n## ', readme.indexOf('## Layout') + 1) >>> 0);
    const listed = [...section.matchAll(/^\s*[-|]\s*`([a-z/-]+?)\/?`/gm)].map((match) => match[1]).filter((name) => LAYERS.includes(name));
    expect(listed).toEqual(LAYERS.filter((layer) => layer !== 'src'));
  });
});
