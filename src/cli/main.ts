/**
 * The slm-train executable (bin/slm-train.js imports this file). The only place that prints an error
 * and sets the exit code: one line on stderr, the stack only with --verbose.
 */
import { isWasmFault, wasmFaultError } from '../backend/wasm-faults.ts';
import { exitCodeOf, formatCliError } from './errors.ts';
import { runProgram } from './program.ts';

const argv = process.argv.slice(2);
const verbose = argv.includes('--verbose');

/** A wasm fault outside a kernel call (a pthread worker's, a read of a dead module) reads like one inside. */
function explained(error: unknown, where: string): unknown {
  return isWasmFault(error) ? wasmFaultError(where, error) : error;
}

// A reader that stops early (`slm-train schema | head`) closes the pipe: the output ends there, without an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

// A pthread worker's trap arrives as an uncaught exception, whose default report is the minified source line.
process.on('uncaughtException', (error) => {
  process.stderr.write(`${formatCliError(explained(error, 'a wasm worker thread'), { verbose })}\n`);
  process.exit(exitCodeOf(error) || 1);
});

try {
  process.exitCode = await runProgram(argv, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });
} catch (error) {
  const shown = explained(error, 'a backend operation');
  process.stderr.write(`${formatCliError(shown, { verbose })}\n`);
  process.exitCode = exitCodeOf(shown);
}
