export declare const SLOT: {
  generation: number;
  pending: number;
  next: number;
  tasks: number;
  chunk: number;
  scratch: number;
  scratchBytes: number;
  argCount: number;
  started: number;
  fn: number;
  args: number;
};
export declare const MAX_ARGS: number;
export declare function runClaimedTasks(control: Int32Array, exports: readonly ((...args: number[]) => void)[], thread: number): void;
