/** Options and argument parsers shared by several commands. */
import { InvalidArgumentError, Option } from 'commander';
import { BACKENDS } from '../recipe/index.ts';

export function backendOption(description = 'tfjs backend'): Option {
  return new Option('--backend <name>', description).choices(BACKENDS);
}

export function modelOption(): Option {
  return new Option('--model <path>', 'a Hugging Face model folder, a .gguf file, ollama:NAME[:TAG], a PEFT adapter folder, or a run folder').makeOptionMandatory();
}

export function integerArg(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got "${value}"`);
    return n;
  };
}

export function numberArg(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${value}"`);
  return n;
}

/** `1,2,3` -> [1, 2, 3]. */
export function idListArg(value: string): number[] {
  const ids = value.split(',').map((part) => Number(part.trim()));
  if (ids.length === 0 || ids.some((id) => !Number.isInteger(id) || id < 0)) {
    throw new InvalidArgumentError(`expected comma-separated token ids like 1,2,3, got "${value}"`);
  }
  return ids;
}
