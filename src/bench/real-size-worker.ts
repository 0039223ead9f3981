/**
 * `node --import tsx real-size-worker.ts '<json>'`: runs benchRealSize in a fresh process (its peak RSS is
 * the run's alone) and prints the result as one JSON line. The JSON holds RealSizeOptions plus the
 * backend and its threads.
 */
import { initBackend } from '../backend/index.ts';
import type { BackendChoice } from '../backend/index.ts';
import { benchRealSize, type RealSizeOptions } from './real-size.ts';

const options = JSON.parse(process.argv[2]) as RealSizeOptions & { backend: BackendChoice; threads?: number };
const backend = await initBackend(options.backend, { threads: options.threads });
const result = await benchRealSize(options);
process.stdout.write(`${JSON.stringify({ backend: backend.backend, threads: backend.threads, ...result })}\n`);
process.exit(0);
