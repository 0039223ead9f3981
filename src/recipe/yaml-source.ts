/**
 * recipe.yaml parsed twice over: plain data for validation, and the node tree with source ranges so that
 * any problem found later can be pointed at a line and column.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node, YAMLError } from 'yaml';
import { RecipeError } from './errors.ts';
import type { KeyPath } from './key-path.ts';

export interface Position {
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
}

/** A problem about a key points at the key itself; any other at the value (or the nearest enclosing key). */
export type Target = 'key' | 'value';

export class YamlSource {
  private constructor(
    readonly fileName: string,
    readonly data: unknown,
    private readonly document: Document.Parsed,
    private readonly lines: LineCounter,
  ) {}

  /** Throws RecipeError on YAML syntax errors (including duplicate keys and multiple documents). */
  static parse(text: string, fileName: string): YamlSource {
    const lines = new LineCounter();
    const document = parseDocument(text, { lineCounter: lines });
    const [syntaxError] = document.errors;
    if (syntaxError) throw syntaxRecipeError(syntaxError, fileName, lines);
    return new YamlSource(fileName, plainData(document, fileName), document, lines);
  }

  /** Where the key path is written; for a missing key, the nearest enclosing key that is. */
  locate(keyPath: KeyPath, target: Target): Position {
    let node: unknown = this.document.contents;
    let found: Position = { line: 1, column: 1 };
    for (const [i, key] of keyPath.entries()) {
      const pair = isMap(node) ? node.items.find((item) => isScalar(item.key) && item.key.value === key) : undefined;
      const child = pair ? pair.value : isSeq(node) && typeof key === 'number' ? node.items[key] : undefined;
      if (pair === undefined && child === undefined) return found;
      const last = i === keyPath.length - 1;
      const keyNode = pair?.key as Node | undefined;
      const pointAt = last && target === 'value' && isNode(child) ? child : (keyNode ?? child);
      if (isNode(pointAt)) found = this.position(pointAt);
      node = child;
    }
    return found;
  }

  private position(node: Node): Position {
    const { line, col } = this.lines.linePos(node.range?.[0] ?? 0);
    return { line, column: col };
  }
}

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && 'range' in value;
}

/** The document as plain data; a document whose aliases expand to far more than it holds is refused. */
function plainData(document: Document.Parsed, fileName: string): unknown {
  try {
    return document.toJS();
  } catch (error) {
    // The yaml library's guard against "billion laughs" documents (maxAliasCount).
    if (!(error instanceof ReferenceError)) throw error;
    const problem = 'invalid YAML: its aliases (*name) expand to far more values than the file holds; write the repeated values out';
    throw new RecipeError([{ file: fileName, line: 1, column: 1, keyPath: '', problem }]);
  }
}

function syntaxRecipeError(error: YAMLError, fileName: string, lines: LineCounter): RecipeError {
  const { line, col } = error.linePos?.[0] ?? lines.linePos(error.pos[0]);
  const problem = error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  return new RecipeError([{ file: fileName, line, column: col, keyPath: '', problem: `invalid YAML: ${problem}` }]);
}
