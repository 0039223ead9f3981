/**
 * `slm-train bench --calibrate-threads`: the benchmark model's training steps and greedy decoding at each
 * candidate wasm thread count, each count in a process of its own (tfjs starts its thread pool once per
 * process), and the fastest count per workload cached for this machine (backend/thread-choice.ts).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { calibrationCandidates, calibrationOf, writeThreadCalibration, type ThreadCalibration, type ThreadMeasurement } from '../backend/thread-choice.ts';
import { SlmError } from '../util/errors.ts';

const run = promisify(execFile);
const WORKER = new URL('./thread-calibration-worker.ts', import.meta.url).pathname;

/** Small enough to take a few seconds per count, large enough that a step is mostly products. */
export const CALIBRATION_WORK = { batchSize: 4, seqLen: 128, trainingSteps: 2, promptTokens: 16, decodeTokens: 48 };

export interface ThreadCalibrationResult extends ThreadCalibration {
  path: string;
}

export async function calibrateThreads(log: (line: string) => void = () => {}, env: NodeJS.ProcessEnv = process.env): Promise<ThreadCalibrationResult> {
  const measurements: ThreadMeasurement[] = [];
  for (const threads of calibrationCandidates()) {
    log(`timing training steps and decoding on ${threads} wasm thread(s)...`);
    measurements.push(await measure(threads));
  }
  const calibration = calibrationOf(measurements);
  return { ...calibration, path: await writeThreadCalibration(calibration, env) };
}

async function measure(threads: number): Promise<ThreadMeasurement> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify({ threads, ...CALIBRATION_WORK })], { maxBuffer: 1 << 20 });
    return JSON.parse(stdout.trim().split('\n').pop()!) as ThreadMeasurement;
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? '');
    const reason = stderr.split('\n').find((line) => /^\w*Error: /.test(line)) ?? (error as Error).message.split('\n')[0];
    throw new SlmError(`bench: timing ${threads} wasm thread(s) failed: ${reason.slice(0, 400)}`, { code: 'ERR_BENCH' });
  }
}
