/** Problems solved in three steps, each step's result feeding a later one. */
import { DOLLARS } from './arith-words.ts';
import { between, cap, eq, noun, qty, step, type Template } from './template.ts';

const buyGiveFind: Template = {
  id: 'buy-give-find',
  draw: (rng) => {
    const [a, b] = [between(rng, 1, 20), between(rng, 1, 20)];
    return [a, b, between(rng, 1, Math.min(20, a + b)), between(rng, 1, 20)];
  },
  solve: ([a, b, c, d]) => {
    const bought = step(a, '+', b);
    const gave = step(bought.c, '-', c);
    return [bought, gave, step(gave.c, '+', d)];
  },
  questions: [
    ({ p, q, item }, [a, b, c, d]) =>
      `${p.name} has ${qty(item, a)}. ${cap(p.subject)} buys ${b} more, gives ${c} to ${q.name}, then finds ${d} more. How many ${item.many} does ${p.name} have now?`,
    ({ p, q, r, item }, [a, b, c, d]) =>
      `${p.name} had ${qty(item, a)}. ${q.name} gave ${p.object} ${b} more, ${p.subject} lost ${c}, then ${r.name} gave ${p.object} ${d}. How many does ${p.name} have now?`,
  ],
  solution: ({ p, item }, [bought, gave, found]) => [
    `${p.name} has ${eq(bought)}.`,
    `Then ${eq(gave)}.`,
    `Then ${eq(found)} ${noun(item, found.c)}.`,
  ],
};

const peopleChain: Template = {
  id: 'people-chain',
  draw: (rng) => {
    const [a, b] = [between(rng, 1, 20), between(rng, 1, 20)];
    return [a, b, between(rng, 1, Math.min(20, a + b - 1))];
  },
  solve: ([a, b, c]) => {
    const second = step(a, '+', b);
    const third = step(second.c, '-', c);
    return [second, third, step(second.c, '+', third.c)];
  },
  questions: [
    ({ p, q, r, item }, [a, b, c]) =>
      `${p.name} has ${qty(item, a)}. ${q.name} has ${b} more than ${p.name}, and ${r.name} has ${c} fewer than ${q.name}. How many do ${q.name} and ${r.name} have together?`,
    ({ p, q, r, item }, [a, b, c]) =>
      `${q.name} has ${b} more ${item.many} than ${p.name}, who has ${a}. ${r.name} has ${c} fewer than ${q.name}. How many do ${q.name} and ${r.name} have together?`,
  ],
  solution: ({ q, r, item }, [second, third, total]) => [
    `${q.name} has ${eq(second)}.`,
    `${r.name} has ${eq(third)}.`,
    `Together ${eq(total)} ${item.many}.`,
  ],
};

const groupsGiveFind: Template = {
  id: 'groups-give-find',
  draw: (rng) => {
    const [g, e] = [between(rng, 2, 5), between(rng, 2, 20)];
    return [g, e, between(rng, 1, Math.min(20, g * e)), between(rng, 1, 20)];
  },
  solve: ([g, e, c, d]) => {
    const grouped = step(g, '*', e);
    const gave = step(grouped.c, '-', c);
    return [grouped, gave, step(gave.c, '+', d)];
  },
  questions: [
    ({ p, q, item, container }, [g, e, c, d]) =>
      `${p.name} buys ${g} ${container.many} of ${e} ${item.many}. ${cap(p.subject)} gives ${c} to ${q.name} and then finds ${d} more. How many ${item.many} does ${p.name} have now?`,
    ({ p, item, container }, [g, e, c, d]) =>
      `${p.name} has ${g} ${container.many} with ${e} ${item.many} in each. ${cap(p.subject)} loses ${c} and gets ${d} more. How many ${item.many} does ${p.name} have?`,
  ],
  solution: ({ item }, [grouped, gave, found]) => [
    `That is ${eq(grouped)}.`,
    `Then ${eq(gave)}.`,
    `Then ${eq(found)} ${noun(item, found.c)}.`,
  ],
};

const spendEarn: Template = {
  id: 'spend-earn',
  draw: (rng) => {
    const a = between(rng, 2, 20);
    const b = between(rng, 1, a - 1);
    return [a, b, between(rng, 1, a - b), between(rng, 1, 20)];
  },
  solve: ([a, b, c, d]) => {
    const first = step(a, '-', b);
    const second = step(first.c, '-', c);
    return [first, second, step(second.c, '+', d)];
  },
  questions: [
    ({ p, buys: [x, y] }, [a, b, c, d]) =>
      `${p.name} has ${qty(DOLLARS, a)}. ${cap(p.subject)} spends ${b} on a ${x} and ${c} on a ${y}, then earns ${d} more. How many dollars does ${p.subject} have now?`,
    ({ p, q, buys: [x] }, [a, b, c, d]) =>
      `${p.name} has ${qty(DOLLARS, a)}, pays ${b} for a ${x}, gives ${c} to ${q.name} and then earns ${d}. How many dollars does ${p.name} have now?`,
  ],
  solution: (_cast, [first, second, earned]) => [`First ${eq(first)}.`, `Then ${eq(second)}.`, `Then ${eq(earned)} ${noun(DOLLARS, earned.c)}.`],
};

export const THREE_STEP: Template[] = [buyGiveFind, peopleChain, groupsGiveFind, spendEarn];
