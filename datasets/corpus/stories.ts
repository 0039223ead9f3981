/**
 * A generated corpus of short, simple English stories for models trained from scratch (no downloads are
 * possible here). A small probabilistic grammar: a few plots (a lost toy, sharing, weather, a noise at
 * night, trying again, helping an animal) filled with named characters whose pronouns stay consistent,
 * places with their own hiding spots and sights, and explicit cause and effect ("so", "because").
 * Deterministic for a seed.
 */
import { Rng } from '../../src/util/rng.ts';
import {
  BOY_NAMES,
  BUILDS,
  CHILD_TRAITS,
  COLORS,
  FOODS,
  GIRL_NAMES,
  GROWNUPS,
  HE,
  NOISES,
  NUMBER_WORDS,
  PET_ACTIONS,
  PET_NAMES,
  PETS,
  PLACES,
  SHE,
  SIZES,
  TIMES,
  TOYS,
  TRAPS,
  UNTIL,
  WEATHERS,
  WILD_ANIMALS,
  type Pronouns,
} from './story-words.ts';

export interface StoryCorpusOptions {
  seed: number;
  count: number;
}

export function generateStoryCorpus({ seed, count }: StoryCorpusOptions): string[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => pick(rng, PLOTS)(rng));
}

interface Character {
  name: string;
  /** girl, boy, or a pet's species. */
  kind: string;
  pronouns: Pronouns;
}

type Plot = (rng: Rng) => string;

const PLOTS: Plot[] = [lostToy, sharing, weather, noiseAtNight, tryingAgain, helpingAnimal];

function lostToy(rng: Rng): string {
  const hero = child(rng);
  const friend = companion(rng, hero);
  const { subject: s, possessive: his } = hero.pronouns;
  const place = pick(rng, PLACES);
  const [firstSpot, foundSpot] = pickDistinct(rng, place.spots, 2);
  const toy = pick(rng, TOYS);
  const described = `${pick(rng, rng.next() < 0.5 ? SIZES : COLORS)} ${toy}`;
  return sentences(
    introduce(rng, hero),
    `${hero.name} had ${withArticle(described)}, and ${s} loved ${his} ${toy} very much.`,
    `${pick(rng, TIMES)}, ${hero.name} took ${his} ${toy} ${place.to}.`,
    `${cap(s)} put the ${toy} down and went to look at ${pick(rng, place.sights)}.`,
    `When ${s} came back, the ${toy} was gone!`,
    `${hero.name} was very sad, and ${s} started to cry.`,
    `${cap(his)} friend ${friend.name} saw ${hero.pronouns.object} and asked, "Why are you sad?"`,
    `"I lost my ${toy}," said ${hero.name}.`,
    `"Do not worry. I will help you look," said ${friend.name}.`,
    `They looked ${firstSpot}, but the ${toy} was not there.`,
    `Then they looked ${foundSpot}, and there it was!`,
    `${hero.name} was so happy that ${s} hugged ${friend.name} and said, "Thank you!"`,
    `After that, ${hero.name} and ${friend.name} played with the ${toy} until ${pick(rng, UNTIL)}.`,
  );
}

function sharing(rng: Rng): string {
  const hero = child(rng);
  const friend = otherChild(rng, hero);
  const grown = pick(rng, GROWNUPS);
  const food = pick(rng, FOODS);
  const count = 2 + rng.int(4);
  const left = count - 1;
  const some = (n: number) => `${NUMBER_WORDS[n]} ${n === 1 ? food.one : food.many}`;
  const { subject: s } = hero.pronouns;
  const story = [
    introduce(rng, hero),
    `${pick(rng, TIMES)}, ${grown.name} gave ${hero.name} ${some(count)}.`,
    `${hero.name} went outside and met ${hero.pronouns.possessive} friend ${friend.name}.`,
    `${friend.name} did not have any ${food.many}, and ${friend.pronouns.subject} looked hungry.`,
    `${hero.name} wanted to help, so ${s} gave one ${food.one} to ${friend.name}.`,
    `Now ${hero.name} had ${some(left)} and ${friend.name} had one.`,
    `${friend.name} smiled and said, "Thank you, ${hero.name}!"`,
  ];
  if (rng.next() < 0.5) {
    const more = 1 + rng.int(NUMBER_WORDS.length - 1 - left);
    story.push(`Later, ${grown.name} gave ${hero.name} ${NUMBER_WORDS[more]} more, so ${s} had ${some(left + more)}.`);
  }
  story.push('Sharing made them both happy, and from that day on they were best friends.');
  return sentences(...story);
}

function weather(rng: Rng): string {
  const hero = child(rng);
  const { subject: s, object: him } = hero.pronouns;
  const grown = pick(rng, GROWNUPS);
  const w = pick(rng, WEATHERS);
  return sentences(
    introduce(rng, hero),
    `${pick(rng, TIMES)}, ${hero.name} wanted to play ${pick(rng, PLACES).at}.`,
    `Because ${w.is}, ${hero.name} ${w.so}.`,
    `Then ${s} went out and ${w.then}`,
    `When ${s} came home, ${s} was tired but happy.`,
    `${grown.name} made ${him} a cup of warm milk, and ${hero.name} told ${grown.pronouns.object} all about ${hero.pronouns.possessive} day.`,
  );
}

function noiseAtNight(rng: Rng): string {
  const hero = child(rng);
  const pet = namedPet(rng, hero);
  const { subject: s, possessive: his } = hero.pronouns;
  const grown = pick(rng, GROWNUPS);
  const noise = pick(rng, NOISES);
  return sentences(
    `One night, ${hero.name} was in bed, but ${s} could not sleep.`,
    `${cap(s)} heard a strange noise: ${noise}!`,
    `${hero.name} was scared, so ${s} hid under ${his} blanket.`,
    `The noise came again. ${cap(noise)}!`,
    `${hero.name} called for ${grown.name}, and ${grown.name} turned on the light.`,
    `It was only ${pet.name}, ${his} ${pet.kind}, ${pick(rng, PET_ACTIONS)}.`,
    `${hero.name} laughed, because ${s} was not scared anymore.`,
    `${cap(s)} gave ${pet.name} a hug, and soon ${s} was fast asleep.`,
  );
}

function tryingAgain(rng: Rng): string {
  const hero = child(rng);
  const { subject: s, reflexive: himself } = hero.pronouns;
  const helper = rng.next() < 0.5 ? pick(rng, GROWNUPS).name : otherChild(rng, hero).name;
  const build = pick(rng, BUILDS);
  return sentences(
    introduce(rng, hero),
    `${pick(rng, TIMES)}, ${hero.name} wanted to make ${build.thing}.`,
    `${cap(s)} worked very hard, but ${build.failure}`,
    `${hero.name} felt angry, and ${s} wanted to give up.`,
    `${helper} said, "Do not give up. Try again, and go slowly."`,
    `So ${hero.name} tried again, and this time ${s} went slowly.`,
    `${build.made}.`,
    `${hero.name} was proud of ${himself}, because ${s} did not give up.`,
  );
}

function helpingAnimal(rng: Rng): string {
  const hero = child(rng);
  const { subject: s } = hero.pronouns;
  const animal = pick(rng, WILD_ANIMALS);
  const trap = pick(rng, TRAPS);
  const grown = pick(rng, GROWNUPS);
  return sentences(
    introduce(rng, hero),
    `${pick(rng, TIMES)}, ${hero.name} was walking ${pick(rng, PLACES).at} when ${s} saw a little ${animal.name}.`,
    `The ${animal.name} was ${trap.stuck}, and it could not get out.`,
    `${hero.name} wanted to help, so ${s} ${trap.rescue}.`,
    `The ${animal.name} was free! It ${animal.moves}.`,
    `${hero.name} felt good, because ${s} had helped the little ${animal.name}.`,
    `At home, ${s} told ${grown.name} what had happened, and ${grown.name} said, "I am proud of you."`,
  );
}

function introduce(rng: Rng, hero: Character): string {
  const trait = pick(rng, CHILD_TRAITS);
  switch (rng.int(3)) {
    case 0:
      return `Once upon a time, there was a little ${hero.kind} named ${hero.name}.`;
    case 1:
      return `${hero.name} was ${withArticle(`${trait} ${hero.kind}`)} who lived near the ${pick(rng, PLACES).name}.`;
    default:
      return `There once was ${withArticle(`${trait} ${hero.kind}`)} called ${hero.name}.`;
  }
}

function child(rng: Rng): Character {
  return rng.next() < 0.5
    ? { name: pick(rng, GIRL_NAMES), kind: 'girl', pronouns: SHE }
    : { name: pick(rng, BOY_NAMES), kind: 'boy', pronouns: HE };
}

function otherChild(rng: Rng, hero: Character): Character {
  for (;;) {
    const other = child(rng);
    if (other.name !== hero.name) return other;
  }
}

function namedPet(rng: Rng, owner: Character): Character {
  const name = pick(rng, PET_NAMES.filter((n) => n !== owner.name));
  return { name, kind: pick(rng, PETS), pronouns: rng.next() < 0.5 ? SHE : HE };
}

/** A friend is another child, or now and then a pet. */
function companion(rng: Rng, hero: Character): Character {
  return rng.next() < 0.8 ? otherChild(rng, hero) : namedPet(rng, hero);
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

function pickDistinct<T>(rng: Rng, items: readonly T[], n: number): T[] {
  return rng.shuffle([...items]).slice(0, n);
}

function withArticle(phrase: string): string {
  return `${/^[aeiou]/i.test(phrase) ? 'an' : 'a'} ${phrase}`;
}

function cap(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function sentences(...parts: string[]): string {
  return parts.join(' ');
}
