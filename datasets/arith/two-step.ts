/** Problems solved in two steps, each step's result feeding the next. */
import { DOLLARS } from './arith-words.ts';
import { between, cap, eq, noun, qty, step, type Template } from './template.ts';

const buyThenGive: Template = {
  id: 'buy-then-give',
  draw: (rng) => [between(rng, 1, 20), between(rng, 1, 20), between(rng, 1, 20)],
  solve: ([a, b, c]) => {
    const bought = step(a, '+', b);
    return [bought, step(bought.c, '-', c)];
  },
  questions: [
    ({ p, q, item }, [a, b, c]) =>
      `${p.name} has ${qty(item, a)}. ${cap(p.subject)} buys ${b} more and gives ${c} to ${q.name}. How many ${item.many} does ${p.name} have now?`,
    ({ p, q, item }, [a, b, c]) =>
      `${p.name} has ${qty(item, a)}. ${q.name} gives ${p.object} ${b} more, then ${p.name} loses ${c}. How many ${item.many} does ${p.name} have now?`,
    ({ p, item }, [a, b, c]) =>
      `${p.name} had ${qty(item, a)}. ${cap(p.subject)} found ${b} more, then gave ${c} away. How many ${item.many} does ${p.name} have now?`,
  ],
  solution: ({ p, item }, [first, second]) => [
    `${p.name} has ${eq(first)} ${noun(item, first.c)}.`,
    `Then ${p.subject} has ${eq(second)} ${noun(item, second.c)}.`,
  ],
};

const giveThenBuy: Template = {
  id: 'give-then-buy',
  draw: (rng) => {
    const a = between(rng, 2, 20);
    return [a, between(rng, 1, a), between(rng, 1, 20)];
  },
  solve: ([a, b, c]) => {
    const gave = step(a, '-', b);
    return [gave, step(gave.c, '+', c)];
  },
  questions: [
    ({ p, q, item }, [a, b, c]) =>
      `${p.name} has ${qty(item, a)}. ${cap(p.subject)} gives ${b} to ${q.name} and then buys ${c} more. How many ${item.many} does ${p.name} have now?`,
    ({ p, q, item }, [a, b, c]) =>
      `${p.name} had ${qty(item, a)} but lost ${b}. Then ${q.name} gave ${p.object} ${c} more. How many ${item.many} does ${p.name} have now?`,
  ],
  solution: ({ p, item }, [first, second]) => [
    `${p.name} has ${eq(first)} ${noun(item, first.c)}.`,
    `Then ${p.subject} has ${eq(second)} ${noun(item, second.c)}.`,
  ],
};

const threeTotal: Template = {
  id: 'three-total',
  draw: (rng) => [between(rng, 1, 20), between(rng, 1, 20), between(rng, 1, 20)],
  solve: ([a, b, c]) => {
    const two = step(a, '+', b);
    return [two, step(two.c, '+', c)];
  },
  questions: [
    ({ p, q, r, item }, [a, b, c]) =>
      `${p.name} has ${qty(item, a)}, ${q.name} has ${b} and ${r.name} has ${c}. How many ${item.many} do they have in all?`,
    ({ p, item }, [a, b, c]) =>
      `${p.name} gets ${qty(item, a)} on Monday, ${b} on Tuesday and ${c} on Friday. How many ${item.many} does ${p.name} get in all?`,
  ],
  solution: ({ item }, [first, second]) => [`First ${eq(first)}.`, `Then ${eq(second)} ${item.many}.`],
};

const moreThanTotal: Template = {
  id: 'more-than-total',
  draw: (rng) => [between(rng, 1, 20), between(rng, 1, 20)],
  solve: ([a, b]) => {
    const other = step(a, '+', b);
    return [other, step(a, '+', other.c)];
  },
  questions: [
    ({ p, q, item }, [a, b]) =>
      `${p.name} has ${qty(item, a)}. ${q.name} has ${b} more than ${p.name}. How many ${item.many} do they have together?`,
    ({ p, q, item }, [a, b]) =>
      `${q.name} has ${b} more ${item.many} than ${p.name}, who has ${a}. How many ${item.many} do they have together?`,
  ],
  solution: ({ q, item }, [other, total]) => [`${q.name} has ${eq(other)}.`, `Together they have ${eq(total)} ${item.many}.`],
};

const fewerThanTotal: Template = {
  id: 'fewer-than-total',
  draw: (rng) => {
    const a = between(rng, 2, 20);
    return [a, between(rng, 1, a - 1)];
  },
  solve: ([a, b]) => {
    const other = step(a, '-', b);
    return [other, step(a, '+', other.c)];
  },
  questions: [
    ({ p, q, item }, [a, b]) =>
      `${p.name} has ${qty(item, a)}. ${q.name} has ${b} fewer than ${p.name}. How many ${item.many} do they have together?`,
    ({ p, q, item }, [a, b]) =>
      `${q.name} has ${b} fewer ${item.many} than ${p.name}, who has ${a}. How many ${item.many} do they have together?`,
  ],
  solution: ({ q, item }, [other, total]) => [`${q.name} has ${eq(other)}.`, `Together they have ${eq(total)} ${item.many}.`],
};

const groupsPlus: Template = {
  id: 'groups-plus',
  draw: (rng) => [between(rng, 2, 5), between(rng, 2, 20), between(rng, 1, 20)],
  solve: ([g, e, c]) => {
    const grouped = step(g, '*', e);
    return [grouped, step(grouped.c, '+', c)];
  },
  questions: [
    ({ p, item, container }, [g, e, c]) =>
      `${p.name} buys ${g} ${container.many} with ${e} ${item.many} in each. ${cap(p.subject)} already had ${c}. How many ${item.many} does ${p.name} have now?`,
    ({ p, item, container }, [g, e, c]) =>
      `${p.name} has ${qty(item, c)}. ${cap(p.subject)} gets ${g} ${container.many} of ${e} more. How many ${item.many} does ${p.name} have now?`,
  ],
  solution: ({ item, container }, [grouped, total]) => [
    `The ${container.many} hold ${eq(grouped)} ${item.many}.`,
    `In all ${eq(total)} ${item.many}.`,
  ],
};

const groupsMinus: Template = {
  id: 'groups-minus',
  draw: (rng) => {
    const [g, e] = [between(rng, 2, 5), between(rng, 2, 20)];
    return [g, e, between(rng, 1, Math.min(20, g * e))];
  },
  solve: ([g, e, c]) => {
    const grouped = step(g, '*', e);
    return [grouped, step(grouped.c, '-', c)];
  },
  questions: [
    ({ p, q, item, container }, [g, e, c]) =>
      `${p.name} has ${g} ${container.many} with ${e} ${item.many} in each. ${cap(p.subject)} gives ${c} to ${q.name}. How many ${item.many} are left?`,
    ({ p, item, container }, [g, e, c]) =>
      `${p.name} buys ${g} ${container.many} of ${e} ${item.many} and loses ${c}. How many ${item.many} does ${p.name} have now?`,
  ],
  solution: ({ item, container }, [grouped, left]) => [
    `The ${container.many} hold ${eq(grouped)} ${item.many}.`,
    `Then ${eq(left)} ${noun(item, left.c)} left.`,
  ],
};

const spend: Template = {
  id: 'spend',
  draw: (rng) => {
    const a = between(rng, 2, 20);
    const b = between(rng, 1, a - 1);
    return [a, b, between(rng, 1, a - b)];
  },
  solve: ([a, b, c]) => {
    const first = step(a, '-', b);
    return [first, step(first.c, '-', c)];
  },
  questions: [
    ({ p, buys: [x, y] }, [a, b, c]) =>
      `${p.name} has ${qty(DOLLARS, a)}. ${cap(p.subject)} buys a ${x} for ${qty(DOLLARS, b)} and a ${y} for ${qty(DOLLARS, c)}. How many dollars are left?`,
    ({ p, buys: [x, y] }, [a, b, c]) =>
      `A ${x} costs ${qty(DOLLARS, b)} and a ${y} costs ${qty(DOLLARS, c)}. ${p.name} pays for both with ${qty(DOLLARS, a)}. How much change does ${p.subject} get?`,
  ],
  solution: (_cast, [first, second]) => [
    `After the first, ${eq(first)} ${noun(DOLLARS, first.c)}.`,
    `After the second, ${eq(second)} ${noun(DOLLARS, second.c)}.`,
  ],
};

export const TWO_STEP: Template[] = [buyThenGive, giveThenBuy, threeTotal, moreThanTotal, fewerThanTotal, groupsPlus, groupsMinus, spend];
