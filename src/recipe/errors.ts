import { SlmError } from '../util/errors.ts';

/** One problem in a recipe, located: `recipe.yaml:12:7: train.schedule: expected ...`. */
export interface RecipeIssue {
  file: string;
  line: number;
  column: number;
  /** Dotted key path such as `train.lr`; empty for problems with the file as a whole. */
  keyPath: string;
  /** What is wrong, without the location. */
  problem: string;
  /** The command-line override (`train.lr=abc`) that set the value, when one did: it is named instead of the line. */
  override?: string;
}

/**
 * A recipe that cannot be used. The message is the first problem in file order; `issues` holds them all,
 * and the location fields repeat the first one's for callers that want just one.
 */
export class RecipeError extends SlmError {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly keyPath: string;

  constructor(readonly issues: readonly RecipeIssue[]) {
    const [first] = issues;
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
    super(`${formatRecipeIssue(first)}${more}`, { code: 'ERR_RECIPE' });
    ({ file: this.file, line: this.line, column: this.column, keyPath: this.keyPath } = first);
  }
}

export function formatRecipeIssue({ file, line, column, keyPath, problem, override }: RecipeIssue): string {
  const where = override === undefined ? `${file}:${line}:${column}` : `${file}: override ${override}`;
  return `${where}: ${keyPath ? `${keyPath}: ` : ''}${problem}`;
}
