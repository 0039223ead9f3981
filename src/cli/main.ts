/**
 * The slm-train executable (bin/slm-train.js imports this file). The only place that prints an error
 * and sets the exit code: one line on stderr, the stack only with --verbose.
 */
import { exitCodeOf, formatCliError } from './errors.ts';
import { runProgram } from './program.ts';

const argv = process.argv.slice(2);
try {
  process.exitCode = await runProgram(argv, { stdout: process.stdout, stderr: process.stderr });
} catch (error) {
  process.stderr.write(`${formatCliError(error, { verbose: argv.includes('--verbose') })}\n`);
  process.exitCode = exitCodeOf(error);
}
