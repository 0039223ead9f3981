import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateStoryCorpus } from '../../../datasets/corpus/stories.ts';
import { BOY_NAMES, GIRL_NAMES } from '../../../datasets/corpus/story-words.ts';
import { corpusJsonl } from '../../../datasets/corpus/write-corpus.ts';
import { DATA_DIR } from '../../../datasets/data-dir.ts';
import { STORY_FILES } from '../../../datasets/corpus/make-stories.ts';

const stories = generateStoryCorpus({ seed: 9, count: 600 });

describe('generateStoryCorpus', () => {
  it('is deterministic for a seed and varies across seeds', () => {
    expect(generateStoryCorpus({ seed: 9, count: 600 })).toEqual(stories);
    const other = generateStoryCorpus({ seed: 10, count: 600 });
    expect(other.filter((s) => stories.includes(s)).length).toBeLessThan(30);
    expect(new Set(stories).size).toBeGreaterThan(590);
  });

  it('writes short plain-ASCII stories from a few hundred distinct words', () => {
    const words = new Set(stories.join(' ').toLowerCase().match(/[a-z]+/g));
    expect(words.size).toBeGreaterThan(250);
    expect(words.size).toBeLessThan(600);
    for (const story of stories) {
      expect(story).toMatch(/^[\x20-\x7e]+$/);
      expect(story.length).toBeGreaterThan(150);
      expect(story.length).toBeLessThan(1200);
      expect(story).toMatch(/[.!"]$/);
    }
  });

  it('keeps pronouns consistent: a story with no male character never says he, him or his', () => {
    const male = new RegExp(`\\b(${[...BOY_NAMES, 'Dad', 'Grandpa'].join('|')})\\b`);
    const female = new RegExp(`\\b(${[...GIRL_NAMES, 'Mom', 'Grandma'].join('|')})\\b`);
    const onlyGirls = stories.filter((s) => !male.test(s) && !/\bboy\b/.test(s));
    const onlyBoys = stories.filter((s) => !female.test(s) && !/\bgirl\b/.test(s));
    expect(onlyGirls.length).toBeGreaterThan(50);
    expect(onlyBoys.length).toBeGreaterThan(50);
    for (const story of onlyGirls) expect(story).not.toMatch(/\b([Hh]e|him|[Hh]is|himself)\b/);
    for (const story of onlyBoys) expect(story).not.toMatch(/\b([Ss]he|[Hh]er|herself)\b/);
  });

  it('keeps the numbers of the sharing stories consistent', () => {
    const numbers = ['zero', 'one', 'two', 'three', 'four', 'five', 'six'];
    const sharing = stories.filter((s) => s.includes('Sharing made them both happy'));
    expect(sharing.length).toBeGreaterThan(50);
    for (const story of sharing) {
      const [, given] = story.match(/ gave \w+ (\w+) /)!;
      const [, left] = story.match(/Now \w+ had (\w+) /)!;
      expect(numbers.indexOf(left)).toBe(numbers.indexOf(given) - 1);
      const more = story.match(/gave \w+ (\w+) more, so \w+ had (\w+) /);
      if (more) expect(numbers.indexOf(more[2])).toBe(numbers.indexOf(left) + numbers.indexOf(more[1]));
    }
  });
});

describe('committed story files', () => {
  it.each(STORY_FILES)('$file is what make-stories.ts generates, under 2 MB', ({ file, seed, count }) => {
    const path = join(DATA_DIR, file);
    expect(statSync(path).size).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(readFileSync(path, 'utf8')).toBe(corpusJsonl(generateStoryCorpus({ seed, count })));
  });
});
