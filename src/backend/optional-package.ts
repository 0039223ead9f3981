import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

export type PackageLoad =
  | { status: 'loaded'; module: unknown }
  | { status: 'not-installed' }
  | { status: 'load-failed'; message: string };

export type PackageLoader = (name: string) => Promise<PackageLoad>;

const require = createRequire(import.meta.url);

/**
 * Imports an optional dependency, telling "not installed" apart from "installed but failed to load"
 * (a native addon or shared library that would not open). Resolving first keeps the two apart under
 * every loader (plain Node, tsx, vitest), whose import errors read differently.
 */
export async function loadOptionalPackage(name: string): Promise<PackageLoad> {
  let entry: string;
  try {
    entry = require.resolve(name);
  } catch (error) {
    if (isModuleNotFound(error)) return { status: 'not-installed' };
    return { status: 'load-failed', message: errorMessage(error) };
  }
  try {
    return { status: 'loaded', module: await import(pathToFileURL(entry).href) };
  } catch (error) {
    return { status: 'load-failed', message: errorMessage(error) };
  }
}

/** A short account of a native load failure: which library or addon would not open, and the loader's words. */
export function describeLoadFailure(packageName: string, message: string): string {
  const firstLine = message.split('\n')[0].trim();
  const library = /(lib[\w.+-]*\.so[\w.]*): cannot open shared object file/.exec(message)?.[1];
  if (library !== undefined) return `native library ${library} could not be opened (${firstLine})`;
  if (/tfjs_binding\.node/.test(message) && /Cannot find module|no such file/i.test(message)) {
    return (
      `its native addon tfjs_binding.node is missing, so its install script did not finish ` +
      `(run: npm rebuild ${packageName}) (${firstLine})`
    );
  }
  return `loading it failed: ${firstLine}`;
}

function isModuleNotFound(error: unknown): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND';
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
