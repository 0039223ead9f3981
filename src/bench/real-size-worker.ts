/**
 * `node --import tsx real-size-worker.ts '<json>'`: runs one phase of the real-size bench in a fresh
 * process (its peak RSS is the phase's alone) and prints the result as one JSON line. The JSON holds
 * RealSizeOptions, the phase (score or train), the backend and its threads.
 */
import { initBackend } from '../backend/index.ts';
import type { BackendChoice } from '../backend/index.ts';
import { benchLoraSteps, benchScoring, type RealSizeOptions } from './real-size.ts';

const options = JSON.parse(process.argv[2]) as RealSizeOptions & { phase: 'score' | 'train'; backend: BackendChoice; threads?: number };
const backend = await initBackend(options.backend, { threads: options.threads });
const result = options.phase === 'score' ? await benchScoring(options) : await benchLoraSteps(options);
process.stdout.write(`${JSON.stringify({ backend: backend.backend, threads: backend.threads, ...result })}\n`);
process.exit(0);
