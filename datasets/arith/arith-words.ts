/** Who and what the arithmetic problems are about. Names and nouns are short so questions stay short. */

export interface Person {
  name: string;
  /** "she" or "he". */
  subject: string;
  /** "her" or "him". */
  object: string;
}

const girl = (name: string): Person => ({ name, subject: 'she', object: 'her' });
const boy = (name: string): Person => ({ name, subject: 'he', object: 'him' });

export const PEOPLE: Person[] = [
  ...['Mia', 'Lily', 'Emma', 'Anna', 'Sara', 'Zoe', 'Ella', 'Lucy', 'Rosa', 'Nina', 'Ruby', 'Amy'].map(girl),
  ...['Tom', 'Ben', 'Sam', 'Leo', 'Jack', 'Finn', 'Omar', 'Ravi', 'Noah', 'Luke', 'Eli', 'Kai'].map(boy),
];

/** A countable noun: "1 apple", "7 apples". */
export interface Noun {
  one: string;
  many: string;
}

const regular = (one: string): Noun => ({ one, many: `${one}s` });

export const ITEMS: Noun[] = [
  ...['apple', 'marble', 'sticker', 'pencil', 'cookie', 'book', 'shell', 'card', 'balloon', 'egg', 'stamp', 'crayon'].map(regular),
  { one: 'cherry', many: 'cherries' },
  { one: 'peach', many: 'peaches' },
];

/** What holds equal groups of items in the multiplication problems. */
export const CONTAINERS: Noun[] = [regular('bag'), { one: 'box', many: 'boxes' }, regular('jar'), regular('pack'), regular('basket')];

/** What the money problems buy; each takes "a". */
export const PURCHASES = ['toy', 'book', 'hat', 'ball', 'kite', 'snack', 'game', 'cap'];

export const DOLLARS: Noun = regular('dollar');
