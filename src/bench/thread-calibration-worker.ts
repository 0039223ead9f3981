/**
 * `node --import tsx thread-calibration-worker.ts '<json>'`: one thread count of the calibration
 * (thread-calibration.ts) in a fresh process; prints a ThreadMeasurement as one JSON line.
 */
import { initBackend } from '../backend/index.ts';
import type { ThreadMeasurement } from '../backend/thread-choice.ts';
import { benchDecoding } from './decoding.ts';
import { BENCH_MODEL, benchTraining } from './training.ts';
import type { CALIBRATION_WORK } from './thread-calibration.ts';

const options = JSON.parse(process.argv[2]) as typeof CALIBRATION_WORK & { threads: number };
const backend = await initBackend('wasm', { threads: options.threads });
const training = await benchTraining({ config: BENCH_MODEL, batchSize: options.batchSize, seqLen: options.seqLen, warmupSteps: 1, steps: options.trainingSteps });
const decoding = await benchDecoding(BENCH_MODEL, options.promptTokens, options.decodeTokens);
const measurement: ThreadMeasurement = {
  threads: backend.threads,
  trainingTokensPerSecond: training.tokensPerSecond,
  decodingTokensPerSecond: decoding.tokensPerSecond,
};
process.stdout.write(`${JSON.stringify(measurement)}\n`);
process.exit(0);
