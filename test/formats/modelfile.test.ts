import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelfileError, ollamaModelfile, parseModelfile } from '../../src/formats/modelfile.ts';

const LLAMA3_TEMPLATE =
  '{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>';

/** Inputs and results from ollama/ollama parser/parser_test.go, the reference for the port. */
describe('parseModelfile reads what Ollama\'s parser reads', () => {
  it('a full Modelfile (TestParseFileFile)', () => {
    const input = `\nFROM model1\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE """${LLAMA3_TEMPLATE}"""    \n`;
    expect(parseModelfile(input)).toEqual([
      { name: 'model', args: 'model1' },
      { name: 'adapter', args: 'adapter1' },
      { name: 'license', args: 'MIT' },
      { name: 'param1', args: 'value1' },
      { name: 'param2', args: 'value2' },
      { name: 'template', args: LLAMA3_TEMPLATE },
    ]);
  });

  it('blanks inside quotes are kept, outside they are trimmed (TestParseFileTrimSpace)', () => {
    const input = `\nFROM "     model 1"\nADAPTER      adapter3\nLICENSE "MIT       "\nPARAMETER param1        value1\nTEMPLATE """   {{ .Prompt }}   """    \n`;
    expect(parseModelfile(input)).toEqual([
      { name: 'model', args: '     model 1' },
      { name: 'adapter', args: 'adapter3' },
      { name: 'license', args: 'MIT       ' },
      { name: 'param1', args: 'value1' },
      { name: 'template', args: '   {{ .Prompt }}   ' },
    ]);
  });

  it.each([
    ['FROM "FOO  BAR  "', [{ name: 'model', args: 'FOO  BAR  ' }]],
    ['FROM     FOOO BAR    ', [{ name: 'model', args: 'FOOO BAR' }]],
    ['FROM /what/is/the path ', [{ name: 'model', args: '/what/is/the path' }]],
    ['FROM llama3:7b-instruct-q4_K_M', [{ name: 'model', args: 'llama3:7b-instruct-q4_K_M' }]],
    ['PARAMETER what the \nFROM lemons make lemonade ', [{ name: 'what', args: 'the' }, { name: 'model', args: 'lemons make lemonade' }]],
  ])('FROM lines (TestParseFileFrom): %j', (input, expected) => {
    expect(parseModelfile(input)).toEqual(expected);
  });

  it.each([
    ['SYSTEM """\nThis is a\nmultiline system.\n"""\n\t\t\t', '\nThis is a\nmultiline system.\n'],
    ['SYSTEM """\nThis is a\nmultiline system."""\n', '\nThis is a\nmultiline system.'],
    ['SYSTEM """This is a multiline system."""\n', 'This is a multiline system.'],
    ['SYSTEM """\nThis is a multiline system with "quotes".\n"""\n', '\nThis is a multiline system with "quotes".\n'],
    ['SYSTEM """"""\n', ''],
    ['SYSTEM ""\n', ''],
    ['SYSTEM "\'"\n', "'"],
    ['SYSTEM """\'\'"\'""\'""\'"\'\'\'\'\'""\'""\'"""\n', '\'\'"\'""\'""\'"\'\'\'\'\'""\'""\''],
    ['TEMPLATE """\n{{ .Prompt }}\n"""', '\n{{ .Prompt }}\n'],
  ])('quoted values (TestParseFileQuoted): %j', (line, args) => {
    expect(parseModelfile(`\nFROM foo\n${line}`)[1].args).toBe(args);
  });

  it.each([
    ['stop ### User: ', '### User:'],
    ['stop "### User: "', '### User: '],
    ['stop """### User:\n"""', '### User:\n'],
    ['stop <|eot_id|>', '<|eot_id|>'],
    ['top_p 1.0', '1.0'],
  ])('parameters (TestParseFileParameters): %j', (parameter, value) => {
    expect(parseModelfile(`FROM foo\nPARAMETER ${parameter}\n`)[1]).toEqual({ name: parameter.split(' ')[0], args: value });
  });

  it('messages, comments and a byte-order mark', () => {
    const input = '\uFEFF# comment\nFROM foo\nMESSAGE system """\nYou are a multiline file parser.\n"""\nMESSAGE user Hey there!\n';
    expect(parseModelfile(input)).toEqual([
      { name: 'model', args: 'foo' },
      { name: 'message', args: 'system: \nYou are a multiline file parser.\n' },
      { name: 'message', args: 'user: Hey there!' },
    ]);
  });

  it.each([
    ['', 'Modelfile: no FROM line'],
    ['PARAMETER param1 value1', 'Modelfile: no FROM line'],
    ['\nFROM foo\nBADCOMMAND param1 value1\n', 'Modelfile: line 3: unknown command "BADCOMMAND"'],
    ['\nFROM foo\nPARAMETER param1\n', 'unexpected'],
    ['\nFROM foo\nMESSAGE badguy I\'m a bad guy!\n', 'line 3: message role must be one of system, user, assistant'],
    ['\nFROM foo\nSYSTEM """This is a multiline system.""\n', 'unexpected end of file inside a quoted value'],
    ['\nFROM foo\nSYSTEM "\n', 'unexpected end of file inside a quoted value'],
  ])('refuses %j', (input, message) => {
    expect(() => parseModelfile(input)).toThrow(ModelfileError);
    expect(() => parseModelfile(input)).toThrow(message);
  });
});

describe('ollamaModelfile', () => {
  it('writes FROM, ADAPTER, TEMPLATE, SYSTEM and PARAMETER lines', () => {
    const text = ollamaModelfile({
      from: '/models/base.gguf',
      adapter: '/runs/tiny/adapter',
      template: LLAMA3_TEMPLATE,
      system: 'Answer in one sentence.',
      parameters: { temperature: 0.7, num_ctx: 4096, stop: ['<|eot_id|>', 'User: '], penalize_newline: false },
    });
    expect(text).toBe(
      [
        'FROM /models/base.gguf',
        'ADAPTER /runs/tiny/adapter',
        `TEMPLATE """${LLAMA3_TEMPLATE}"""`,
        'SYSTEM """Answer in one sentence."""',
        'PARAMETER temperature 0.7',
        'PARAMETER num_ctx 4096',
        'PARAMETER stop <|eot_id|>',
        'PARAMETER stop "User: "',
        'PARAMETER penalize_newline false',
        '',
      ].join('\n'),
    );
    expect(parseModelfile(text)).toEqual([
      { name: 'model', args: '/models/base.gguf' },
      { name: 'adapter', args: '/runs/tiny/adapter' },
      { name: 'template', args: LLAMA3_TEMPLATE },
      { name: 'system', args: 'Answer in one sentence.' },
      { name: 'temperature', args: '0.7' },
      { name: 'num_ctx', args: '4096' },
      { name: 'stop', args: '<|eot_id|>' },
      { name: 'stop', args: 'User: ' },
      { name: 'penalize_newline', args: 'false' },
    ]);
  });

  it.each([
    ['quotes that end the text', 'Say "hi"', 'TEMPLATE """Say "hi""""'],
    ['triple quotes inside a line', 'a """quoted""" word', 'TEMPLATE """a """quoted""" word"""'],
    ['a leading quote', '"Hi" she said', 'TEMPLATE """"Hi" she said"""'],
    ['empty text', '', 'TEMPLATE """"""'],
    ['tabs, CRLF and blanks at the ends', '\t{{ .Prompt }}\r\n ', 'TEMPLATE """\t{{ .Prompt }}\r\n """'],
    ['a line ending in a single quote', 'line "one"\nline two', 'TEMPLATE """line "one"\nline two"""'],
  ])('quotes a template with %s so Ollama reads it back', (_, template, line) => {
    const text = ollamaModelfile({ from: 'base', template });
    expect(text).toBe(`FROM base\n${line}\n`);
    expect(parseModelfile(text)[1]).toEqual({ name: 'template', args: template });
  });

  it('refuses text no quoting carries, and characters Ollama\'s parser drops', () => {
    // Ollama would end the value at the first line break: the text so far ends with the closing quote.
    expect(() => ollamaModelfile({ from: 'base', template: 'first """\nsecond' })).toThrow(
      /^Modelfile template: Ollama's parser cannot read this value back in any quoting/,
    );
    expect(() => ollamaModelfile({ from: 'base', system: 'emoji 👩\u200d💻' })).toThrow(
      "Modelfile system: character U+200D at index 8 would be dropped by Ollama's parser",
    );
    expect(() => ollamaModelfile({ from: 'base', system: 'non\u00a0breaking' })).toThrow('U+00A0');
  });

  it('quotes FROM and PARAMETER values only when they need it', () => {
    expect(ollamaModelfile({ from: '/my models/x.gguf' })).toBe('FROM /my models/x.gguf\n');
    expect(ollamaModelfile({ from: ' odd' })).toBe('FROM " odd"\n');
    expect(ollamaModelfile({ from: 'base', parameters: { stop: '"quoted"' } })).toBe('FROM base\nPARAMETER stop ""quoted""\n');
    expect(ollamaModelfile({ from: 'base', parameters: { stop: '\n\n' } })).toBe('FROM base\nPARAMETER stop "\n\n"\n');
  });

  it('refuses bad parameter names and values', () => {
    expect(() => ollamaModelfile({ from: 'base', parameters: { 'top-k': 1 } })).toThrow('Modelfile parameters: name "top-k" must be letters, digits and underscores');
    expect(() => ollamaModelfile({ from: 'base', parameters: { template: 'x' } })).toThrow('is a Modelfile command');
    expect(() => ollamaModelfile({ from: 'base', parameters: { temperature: Number.NaN } })).toThrow('Modelfile parameters.temperature: NaN is not a finite number');
    expect(() => ollamaModelfile({ from: '' })).toThrow('Modelfile from: must not be empty');
  });

  it('round-trips arbitrary printable text through Ollama\'s parsing, or says why it cannot', () => {
    const pieces = ['a', ' ', '  ', '\t', '\n', '\r\n', '"', '""', '"""', "'", '{{ .Prompt }}', '#', 'é', '😀', '<|eot_id|>'];
    const text = fc.array(fc.constantFrom(...pieces), { maxLength: 12 }).map((parts) => parts.join(''));
    let refused = 0;
    fc.assert(
      fc.property(text, text, (template, system) => {
        let modelfile: string;
        try {
          modelfile = ollamaModelfile({ from: 'base', template, system, parameters: { stop: template } });
        } catch (error) {
          refused++;
          expect((error as Error).message).toMatch(/cannot read this value back in any quoting/);
          // Only text with a line break right after triple quotes (blanks aside) can be unrepresentable.
          expect(`${template}\n${system}`).toMatch(/"""[ \t]*[\r\n]/);
          return;
        }
        const commands = parseModelfile(modelfile);
        expect(commands.map((c) => c.args)).toEqual(['base', template, system, template]);
      }),
      { seed: 3, numRuns: 300 },
    );
    expect(refused).toBeLessThan(150);
  });
});
