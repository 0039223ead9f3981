export { initBackend } from './select.ts';
export { doctorReport, formatDoctorReport, type DoctorBackend, type DoctorReport } from './doctor.ts';
export { BackendOptionError, BackendUnavailableError } from './errors.ts';
export { registerWasmKernels } from './kernels/index.ts';
export type { GpuCheck, GpuEvidence } from './gpu.ts';
export type { WasmStatus } from './wasm.ts';
export { decodingWorkload, type ThreadCalibration, type ThreadChoice, type Workload } from './thread-choice.ts';
export type {
  BackendAttempt,
  BackendChoice,
  BackendName,
  BackendReport,
  InitBackendOptions,
} from './types.ts';
