/** The vocabulary of the generated stories: who, where, what, and how things are said. */

export interface Pronouns {
  subject: string;
  object: string;
  possessive: string;
  reflexive: string;
}

export const SHE: Pronouns = { subject: 'she', object: 'her', possessive: 'her', reflexive: 'herself' };
export const HE: Pronouns = { subject: 'he', object: 'him', possessive: 'his', reflexive: 'himself' };

export const GIRL_NAMES = ['Mia', 'Lily', 'Emma', 'Anna', 'Sara', 'Zoe', 'Ella', 'Lucy', 'Rosa', 'Nina', 'Maya', 'Ruby', 'Ivy', 'Amy'];
export const BOY_NAMES = ['Tom', 'Ben', 'Sam', 'Leo', 'Jack', 'Finn', 'Omar', 'Ravi', 'Noah', 'Luke', 'Eli', 'Theo', 'Dan', 'Kai'];
export const PET_NAMES = ['Spot', 'Fluffy', 'Biscuit', 'Pip', 'Coco', 'Bubbles', 'Rusty', 'Daisy', 'Pepper', 'Sunny'];

export const PETS = ['dog', 'cat', 'rabbit', 'puppy', 'kitten', 'hamster'];
export interface WildAnimal {
  name: string;
  /** How it leaves once free. */
  moves: string;
}

export const WILD_ANIMALS: WildAnimal[] = [
  { name: 'bird', moves: 'flew away' },
  { name: 'duck', moves: 'swam away' },
  { name: 'frog', moves: 'hopped away' },
  { name: 'mouse', moves: 'ran away' },
  { name: 'squirrel', moves: 'ran up a tree' },
  { name: 'turtle', moves: 'walked slowly away' },
  { name: 'butterfly', moves: 'flew away' },
  { name: 'rabbit', moves: 'hopped away' },
];
export const CHILD_TRAITS = ['kind', 'happy', 'curious', 'brave', 'funny', 'quiet', 'clever', 'friendly'];

export interface Grown {
  name: string;
  pronouns: Pronouns;
}

export const GROWNUPS: Grown[] = [
  { name: 'Mom', pronouns: SHE },
  { name: 'Dad', pronouns: HE },
  { name: 'Grandma', pronouns: SHE },
  { name: 'Grandpa', pronouns: HE },
];

export interface Place {
  name: string;
  /** The place with its prepositions: "in the park", "to the park"; "on the farm", "to the farm". */
  at: string;
  to: string;
  /** Where a lost thing can hide, as a phrase after "looked". */
  spots: string[];
  /** What draws a child away for a moment. */
  sights: string[];
}

export const PLACES: Place[] = [
  {
    name: 'park',
    at: 'in the park',
    to: 'to the park',
    spots: ['under the slide', 'behind a big tree', 'near the pond', 'in the sandbox', 'under a bench'],
    sights: ['the ducks on the pond', 'a man with balloons', 'the big swings'],
  },
  {
    name: 'garden',
    at: 'in the garden',
    to: 'to the garden',
    spots: ['under a bush', 'behind the fence', 'in the flower bed', 'next to the shed', 'under the table'],
    sights: ['a yellow butterfly', 'the red flowers', 'a little bird in a tree'],
  },
  {
    name: 'beach',
    at: 'on the beach',
    to: 'to the beach',
    spots: ['in the sand', 'under a towel', 'near the rocks', 'by the water', 'behind a sand castle'],
    sights: ['the big waves', 'a crab on the rocks', 'a boat on the sea'],
  },
  {
    name: 'forest',
    at: 'in the forest',
    to: 'to the forest',
    spots: ['under a log', 'behind a big rock', 'near the river', 'in a pile of leaves', 'under a tree'],
    sights: ['a deer between the trees', 'a bird singing', 'a little river'],
  },
  {
    name: 'farm',
    at: 'on the farm',
    to: 'to the farm',
    spots: ['in the barn', 'behind the hay', 'near the pond', 'under the cart', 'by the gate'],
    sights: ['the baby goats', 'a big brown cow', 'the pigs in the mud'],
  },
  {
    name: 'school',
    at: 'at school',
    to: 'to school',
    spots: ['under a desk', 'in the reading corner', 'behind the door', 'on a shelf', 'in a basket'],
    sights: ['a new picture on the wall', 'the fish in the tank', 'the children singing'],
  },
];

export const COLORS = ['red', 'blue', 'green', 'yellow', 'pink', 'purple', 'orange', 'white', 'brown'];
export const SIZES = ['big', 'small', 'little', 'shiny', 'soft', 'old', 'new'];
export const TOYS = ['ball', 'kite', 'hat', 'book', 'toy car', 'teddy bear', 'doll', 'drum', 'toy boat', 'robot', 'scarf'];

export interface Food {
  one: string;
  many: string;
}

export const FOODS: Food[] = [
  { one: 'apple', many: 'apples' },
  { one: 'cookie', many: 'cookies' },
  { one: 'banana', many: 'bananas' },
  { one: 'cherry', many: 'cherries' },
  { one: 'sandwich', many: 'sandwiches' },
  { one: 'cupcake', many: 'cupcakes' },
  { one: 'pear', many: 'pears' },
  { one: 'carrot', many: 'carrots' },
];

export const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six'];

export const TIMES = ['One day', 'One morning', 'One sunny afternoon', 'On Saturday', 'One evening', 'Last summer'];
export const UNTIL = ['the sun went down', 'it was time for dinner', 'they were too tired to play', 'Mom called them home'];

export const NOISES = ['scratch, scratch', 'tap, tap, tap', 'bump', 'squeak, squeak'];
export const PET_ACTIONS = ['playing with a ball', 'looking for food', 'chasing its tail', 'hiding in a box'];

export interface Build {
  thing: string;
  made: string;
  failure: string;
}

export const BUILDS: Build[] = [
  { thing: 'a tall tower with blocks', made: 'The tower was tall and strong', failure: 'the tower fell down. Crash!' },
  { thing: 'a sand castle', made: 'The castle had four towers and a door', failure: 'a wave came and washed it away. Splash!' },
  { thing: 'a paper boat', made: 'The boat floated on the water', failure: 'the paper tore in half. Rip!' },
  { thing: 'a picture of a horse', made: 'The horse in the picture looked fast and strong', failure: 'the paint ran all over the page. Oh no!' },
];

export interface Weather {
  is: string;
  so: string;
  then: string;
}

export const WEATHERS: Weather[] = [
  { is: 'it was raining', so: 'took an umbrella', then: 'jumped in the puddles. Splash!' },
  { is: 'it was snowing', so: 'put on a warm coat and a hat', then: 'made a snowman with a carrot nose.' },
  { is: 'it was hot and sunny', so: 'took a bottle of water', then: 'sat in the shade of a big tree.' },
  { is: 'it was very windy', so: 'took a kite', then: 'watched the kite fly high in the sky.' },
];

export interface Trap {
  stuck: string;
  rescue: string;
}

export const TRAPS: Trap[] = [
  { stuck: 'stuck in a net', rescue: 'carefully opened the net' },
  { stuck: 'stuck in the mud', rescue: 'gently lifted it out of the mud' },
  { stuck: 'caught on a branch', rescue: 'slowly pulled the branch away' },
  { stuck: 'trapped in a jar', rescue: 'took the lid off the jar' },
];
