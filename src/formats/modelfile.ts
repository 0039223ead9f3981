/**
 * Ollama's Modelfile (ollama/ollama `parser/parser.go`, `docs/modelfile.md`): one command per line, `FROM`,
 * `ADAPTER`, `TEMPLATE`, `SYSTEM`, `PARAMETER name value`, `MESSAGE role text`, ... A value runs to the end of
 * its line; quoting it in `"` or `"""` lets it span lines or keep blanks at its ends.
 *
 * The parser has no escapes, which shapes the writer: a quoted value ends at the first line break where the
 * text so far, trailing blanks trimmed, ends with its closing quote, and every character Go's strconv.IsPrint
 * rejects (controls, non-ASCII spaces, format characters such as U+200D) is dropped, tabs and line breaks
 * inside a value excepted. So the writer tries the plain and quoted forms of each value, keeps the first that
 * this module's port of the parser reads back unchanged, and refuses values that no form carries.
 */
import { SlmError } from '../util/errors.ts';

/** What the parser yields: `name` is `model` for FROM, the lower-cased keyword, or a PARAMETER's own name. */
export interface ModelfileCommand {
  name: string;
  args: string;
}

export type ModelfileParameterValue = string | number | boolean;

export interface ModelfileSpec {
  /** A GGUF path, a safetensors directory, or an Ollama model name. */
  from: string;
  /** A GGUF LoRA or a PEFT safetensors directory. */
  adapter?: string;
  /** The Go template Ollama renders prompts with. */
  template?: string;
  system?: string;
  /** One PARAMETER line per value; an array (say `stop`) gives one line per element. */
  parameters?: Readonly<Record<string, ModelfileParameterValue | readonly ModelfileParameterValue[]>>;
}

export class ModelfileError extends SlmError {
  constructor(message: string) {
    super(message, { code: 'ERR_MODELFILE' });
  }
}

/** Commands the parser accepts (parser.go isValidCommand). */
const COMMANDS = new Set(['from', 'license', 'template', 'system', 'adapter', 'renderer', 'parser', 'parameter', 'message', 'requires', 'draft']);
/** Names a PARAMETER must not take: Ollama's CreateRequest would read them as commands. */
const RESERVED_PARAMETER_NAMES = new Set([...COMMANDS, 'model']);
const MESSAGE_ROLES = new Set(['system', 'user', 'assistant']);

// ---- writer ---------------------------------------------------------------------------------------------

/** Renders a Modelfile whose every value Ollama reads back exactly; throws a ModelfileError naming the field otherwise. */
export function ollamaModelfile(spec: ModelfileSpec): string {
  if (spec.from === '') throw new ModelfileError('Modelfile from: must not be empty');
  const lines = [command('FROM', 'from', spec.from, PLAIN_FIRST)];
  if (spec.adapter !== undefined) lines.push(command('ADAPTER', 'adapter', spec.adapter, PLAIN_FIRST));
  // TEMPLATE and SYSTEM are usually multi-line text; Ollama's docs write them in triple quotes.
  if (spec.template !== undefined) lines.push(command('TEMPLATE', 'template', spec.template, TRIPLE_ONLY));
  if (spec.system !== undefined) lines.push(command('SYSTEM', 'system', spec.system, TRIPLE_ONLY));
  for (const [name, value] of Object.entries(spec.parameters ?? {})) {
    checkParameterName(name);
    const values: readonly ModelfileParameterValue[] = Array.isArray(value) ? value : [value as ModelfileParameterValue];
    values.forEach((v, i) => {
      const field = Array.isArray(value) ? `parameters.${name}[${i}]` : `parameters.${name}`;
      lines.push(command(`PARAMETER ${name}`, field, parameterText(field, v), PLAIN_FIRST));
    });
  }
  return `${lines.join('\n')}\n`;
}

type Quote = '' | '"' | '"""';
const PLAIN_FIRST: readonly Quote[] = ['', '"', '"""'];
/** Single quotes never save a value triple quotes lose: a line ending in `"""` also ends in `"`. */
const TRIPLE_ONLY: readonly Quote[] = ['"""'];

function command(keyword: string, field: string, value: string, quotes: readonly Quote[]): string {
  checkPrintable(field, value);
  for (const quote of quotes) {
    const line = `${keyword} ${quote}${value}${quote}`;
    if (readsBackAs(line, value)) return line;
  }
  throw new ModelfileError(
    `Modelfile ${field}: Ollama's parser cannot read this value back in any quoting (a line of it ends with triple quotes): ${JSON.stringify(value.slice(0, 80))}`,
  );
}

function readsBackAs(line: string, value: string): boolean {
  try {
    const commands = parseCommands(`${line}\n`, 'Modelfile');
    return commands.length === 1 && commands[0].args === value;
  } catch {
    return false;
  }
}

function checkPrintable(field: string, value: string): void {
  let index = 0;
  for (const char of value) {
    if (!isPrint(char) && !isSpace(char) && !isNewline(char)) {
      const code = `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
      throw new ModelfileError(`Modelfile ${field}: character ${code} at index ${index} would be dropped by Ollama's parser`);
    }
    index += char.length;
  }
}

function checkParameterName(name: string): void {
  if (!/^[A-Za-z0-9_]+$/.test(name)) {
    throw new ModelfileError(`Modelfile parameters: name ${JSON.stringify(name)} must be letters, digits and underscores`);
  }
  if (RESERVED_PARAMETER_NAMES.has(name.toLowerCase())) {
    throw new ModelfileError(`Modelfile parameters: name ${JSON.stringify(name)} is a Modelfile command; use the matching field instead`);
  }
}

function parameterText(field: string, value: ModelfileParameterValue): string {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new ModelfileError(`Modelfile ${field}: ${value} is not a finite number`);
  return String(value);
}

// ---- reader ---------------------------------------------------------------------------------------------

/** Parses a Modelfile as Ollama does; it must have a FROM line. `file` starts error messages. */
export function parseModelfile(text: string, file = 'Modelfile'): ModelfileCommand[] {
  const commands = parseCommands(text, file);
  if (!commands.some((c) => c.name === 'model')) throw new ModelfileError(`${file}: no FROM line`);
  return commands;
}

type State = 'nil' | 'name' | 'value' | 'parameter' | 'message' | 'comment';

/** A port of parser.go's ParseFile state machine: one character at a time, acting on each change of state. */
function parseCommands(text: string, file: string): ModelfileCommand[] {
  const commands: ModelfileCommand[] = [];
  const fail = (line: number, detail: string): never => {
    throw new ModelfileError(`${file}: line ${line}: ${detail}`);
  };
  let state: State = 'nil';
  let buffer = '';
  let name = '';
  let role = '';
  let line = 1;
  for (const input of text.startsWith('\uFEFF') ? text.slice(1) : text) {
    if (isNewline(input)) line++;
    const [proposed, char] = nextState(input, state, line, fail);
    let next = proposed;
    if (next !== state) {
      if (state === 'name') {
        const keyword = buffer.toLowerCase();
        if (!COMMANDS.has(keyword)) fail(line, `unknown command ${JSON.stringify(buffer)}; expected one of ${[...COMMANDS].join(', ')}`);
        if (keyword === 'parameter') next = 'parameter';
        else if (keyword === 'message') next = 'message';
        name = keyword === 'from' ? 'model' : keyword;
      } else if (state === 'parameter') {
        name = buffer;
      } else if (state === 'message') {
        if (!MESSAGE_ROLES.has(buffer)) fail(line, `message role must be one of ${[...MESSAGE_ROLES].join(', ')}`);
        role = buffer;
      } else if (state === 'value') {
        const value = unquote(trimBlanks(buffer));
        // A blank, or a line break inside an open quote, belongs to the value.
        if (value === undefined || isSpace(char)) {
          buffer += char;
          continue;
        }
        commands.push({ name, args: role ? `${role}: ${value}` : value });
        role = '';
      }
      buffer = '';
      state = next;
    }
    if (isPrint(char)) buffer += char;
  }
  if (state === 'value') {
    const value = unquote(trimBlanks(buffer));
    if (value === undefined) fail(line, 'unexpected end of file inside a quoted value');
    commands.push({ name, args: role ? `${role}: ${value}` : value! });
  } else if (state !== 'nil' && state !== 'comment') {
    fail(line, 'unexpected end of file: a command is missing its value');
  }
  return commands;
}

/** parser.go parseRuneForState: the next state and the character to keep ('' for none). */
function nextState(char: string, state: State, line: number, fail: (line: number, detail: string) => never): [State, string] {
  switch (state) {
    case 'nil':
      if (char === '#') return ['comment', ''];
      if (isSpace(char) || isNewline(char)) return ['nil', ''];
      return ['name', char];
    case 'name':
      if (/^[A-Za-z]$/.test(char)) return ['name', char];
      if (isSpace(char)) return ['value', ''];
      return fail(line, `unexpected ${JSON.stringify(char)} in a command name`);
    case 'value':
      if (isNewline(char) || isSpace(char)) return ['nil', char];
      return ['value', char];
    case 'parameter':
      if (/^[A-Za-z0-9_]$/.test(char)) return ['parameter', char];
      if (isSpace(char)) return ['value', ''];
      return fail(line, `unexpected ${JSON.stringify(char)} in a parameter name`);
    case 'message':
      if (/^[A-Za-z]$/.test(char)) return ['message', char];
      if (isSpace(char)) return ['value', ''];
      return fail(line, `unexpected ${JSON.stringify(char)} in a message role`);
    case 'comment':
      return [isNewline(char) ? 'nil' : 'comment', ''];
  }
}

/** The value inside `"""..."""` or `"..."`, the text itself when unquoted, undefined while a quote is open. */
function unquote(text: string): string | undefined {
  if (text.startsWith('"""')) return text.length >= 6 && text.endsWith('"""') ? text.slice(3, -3) : undefined;
  if (text.startsWith('"')) return text.length >= 2 && text.endsWith('"') ? text.slice(1, -1) : undefined;
  return text;
}

/** Go's strings.TrimSpace, for the only blanks a value can hold (everything else non-printable was dropped). */
function trimBlanks(text: string): string {
  return text.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
}

/** Go's strconv.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
function isPrint(char: string): boolean {
  return /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(char);
}

function isSpace(char: string): boolean {
  return char === ' ' || char === '\t';
}

function isNewline(char: string): boolean {
  return char === '\n' || char === '\r';
}
