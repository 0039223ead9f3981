/**
 * `slm-train bench --calibrate-threads`: the benchmark model's training steps and greedy decoding at each
 * candidate wasm thread count, each count in a process of its own (tfjs starts its thread pool once per
 * process), and the fastest count per workload cached for this machine (backend/thread-choice.ts).
 */
import { calibrationCandidates, calibrationOf, writeThreadCalibration, type ThreadCalibration, type ThreadMeasurement } from '../backend/thread-choice.ts';
import { runBenchWorker } from './worker-process.ts';

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

function measure(threads: number): Promise<ThreadMeasurement> {
  return runBenchWorker(new URL('./thread-calibration-worker.ts', import.meta.url), { threads, ...CALIBRATION_WORK }, `timing ${threads} wasm thread(s)`);
}
