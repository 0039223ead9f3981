import * as tf from '@tensorflow/tfjs-core';

const MiB = 1024 * 1024;

/** Peak resident memory of the process and peak bytes held in tensors, sampled by the caller. */
export class PeakMemory {
  private rss = 0;
  private tensorBytes = 0;

  sample(): void {
    this.rss = Math.max(this.rss, process.memoryUsage().rss);
    this.tensorBytes = Math.max(this.tensorBytes, tf.memory().numBytes);
  }

  /** A peak measured elsewhere (tf.profile's peakBytes). */
  recordTensorBytes(bytes: number): void {
    this.tensorBytes = Math.max(this.tensorBytes, bytes);
  }

  peaks(): { peakRssMiB: number; peakTensorMiB: number } {
    this.sample();
    return { peakRssMiB: round(this.rss / MiB), peakTensorMiB: round(this.tensorBytes / MiB) };
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
