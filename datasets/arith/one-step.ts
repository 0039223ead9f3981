/** Problems solved in one step: add, take away, combine, compare, multiply, share. */
import { between, cap, eq, noun, qty, step, type Template } from './template.ts';

const add: Template = {
  id: 'add',
  draw: (rng) => [between(rng, 1, 20), between(rng, 1, 20)],
  solve: ([a, b]) => [step(a, '+', b)],
  questions: [
    ({ p, item }, [a, b]) => `${p.name} has ${qty(item, a)}. ${cap(p.subject)} buys ${b} more. How many ${item.many} does ${p.name} have now?`,
    ({ p, q, item }, [a, b]) =>
      `${p.name} has ${qty(item, a)}. ${q.name} gives ${p.object} ${b} more. How many ${item.many} does ${p.name} have now?`,
    ({ p, item }, [a, b]) => `${p.name} had ${qty(item, a)} and found ${b} more. How many ${item.many} does ${p.name} have now?`,
  ],
  solution: ({ p, item }, [s]) => [`${p.name} has ${eq(s)} ${noun(item, s.c)}.`],
};

const takeAway: Template = {
  id: 'take-away',
  draw: (rng) => {
    const a = between(rng, 2, 20);
    return [a, between(rng, 1, a)];
  },
  solve: ([a, b]) => [step(a, '-', b)],
  questions: [
    ({ p, q, item }, [a, b]) => `${p.name} has ${qty(item, a)}. ${cap(p.subject)} gives ${b} to ${q.name}. How many ${item.many} does ${p.name} have left?`,
    ({ p, item }, [a, b]) => `${p.name} has ${qty(item, a)} and loses ${b}. How many ${item.many} does ${p.name} have left?`,
    ({ p, item }, [a, b]) => `${p.name} had ${qty(item, a)}. ${cap(p.subject)} sold ${b} of them. How many ${item.many} are left?`,
  ],
  solution: ({ p, item }, [s]) => [`${p.name} has ${eq(s)} ${noun(item, s.c)} left.`],
};

const combine: Template = {
  id: 'combine',
  draw: (rng) => [between(rng, 1, 20), between(rng, 1, 20)],
  solve: ([a, b]) => [step(a, '+', b)],
  questions: [
    ({ p, q, item }, [a, b]) => `${p.name} has ${qty(item, a)} and ${q.name} has ${qty(item, b)}. How many ${item.many} do they have together?`,
    ({ p, q, item }, [a, b]) => `${p.name} gets ${qty(item, a)}. ${q.name} gets ${qty(item, b)}. How many ${item.many} did they get in all?`,
    ({ item }, [a, b]) => `There are ${qty(item, a)} in a box and ${qty(item, b)} on the table. How many ${item.many} are there in all?`,
  ],
  solution: ({ item }, [s]) => [`In all there are ${eq(s)} ${noun(item, s.c)}.`],
};

const compare: Template = {
  id: 'compare',
  draw: (rng) => {
    const b = between(rng, 1, 19);
    return [between(rng, b + 1, 20), b];
  },
  solve: ([a, b]) => [step(a, '-', b)],
  questions: [
    ({ p, q, item }, [a, b]) =>
      `${p.name} has ${qty(item, a)} and ${q.name} has ${qty(item, b)}. How many more ${item.many} does ${p.name} have than ${q.name}?`,
    ({ p, q, item }, [a, b]) => `${q.name} has ${qty(item, b)}. ${p.name} has ${qty(item, a)}. How many fewer ${item.many} does ${q.name} have?`,
    ({ p, q, item }, [a, b]) =>
      `${p.name} has ${qty(item, a)}. ${q.name} has ${b}. How many more does ${q.name} need to have as many as ${p.name}?`,
  ],
  solution: (_cast, [s]) => [`The difference is ${eq(s)}.`],
};

/** Equal groups: one factor is 2 to 5, the other up to 20. */
const groups: Template = {
  id: 'groups',
  draw: (rng) => (rng.next() < 0.5 ? [between(rng, 2, 5), between(rng, 2, 20)] : [between(rng, 2, 20), between(rng, 2, 5)]),
  solve: ([g, e]) => [step(g, '*', e)],
  questions: [
    ({ p, item, container }, [g, e]) =>
      `${p.name} has ${g} ${container.many} with ${e} ${item.many} in each. How many ${item.many} does ${p.name} have?`,
    ({ p, item, container }, [g, e]) => `${p.name} buys ${g} ${container.many} of ${e} ${item.many}. How many ${item.many} does ${p.name} buy?`,
    ({ item }, [g, e]) => `There are ${g} rows with ${e} ${item.many} in each row. How many ${item.many} are there?`,
  ],
  solution: ({ item }, [s]) => [`That is ${eq(s)} ${item.many}.`],
};

const timesAsMany: Template = {
  id: 'times-as-many',
  draw: (rng) => [between(rng, 1, 20), between(rng, 2, 5)],
  solve: ([a, k]) => [step(a, '*', k)],
  questions: [
    ({ p, q, item }, [a, k]) => `${p.name} has ${qty(item, a)}. ${q.name} has ${k} times as many. How many ${item.many} does ${q.name} have?`,
    ({ p, q, item }, [a, k]) =>
      `${q.name} has ${k} times as many ${item.many} as ${p.name}, who has ${a}. How many ${item.many} does ${q.name} have?`,
  ],
  solution: ({ q, item }, [s]) => [`${q.name} has ${eq(s)} ${item.many}.`],
};

/** Equal sharing, drawn from the quotient (1 to 20) so the division is exact. */
const share: Template = {
  id: 'share',
  draw: (rng) => {
    const ways = between(rng, 2, 5);
    return [ways * between(rng, 1, Math.min(20, Math.floor(99 / ways))), ways];
  },
  solve: ([total, ways]) => [step(total, '/', ways)],
  questions: [
    ({ p, item }, [t, w]) => `${p.name} has ${qty(item, t)} and shares them equally among ${w} friends. How many ${item.many} does each friend get?`,
    ({ p, item, container }, [t, w]) =>
      `${p.name} puts ${qty(item, t)} into ${w} ${container.many}, the same number in each. How many ${item.many} go in each?`,
    ({ item }, [t, w]) => `${w} children share ${qty(item, t)} equally. How many ${item.many} does each child get?`,
  ],
  solution: ({ item }, [s]) => [`Each gets ${eq(s)} ${noun(item, s.c)}.`],
};

export const ONE_STEP: Template[] = [add, takeAway, combine, compare, groups, timesAsMany, share];
