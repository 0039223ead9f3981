/**
 * tfjs-backend-wasm prints one line and leaves a product's output unwritten when XNNPACK fails (measured:
 * a 262144 x 1152 embedding whose packed copy no longer fit a crowded heap gave silently wrong gradients).
 * The matmul kernel's native call turns that line into an out-of-memory error; other writes pass through.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { refusingXnnFailures } from '../../../src/backend/kernels/batch-mat-mul.ts';

const fs = createRequire(import.meta.url)('node:fs') as { writeSync: (fd: number, data: string) => number };
const LINE = 'XNN status for xnn_create_fully_connected_nc_f32 is not successful. Got status 6. Use -c dbg to see XNN logs.\n';

describe('a product XNNPACK could not run', () => {
  it('throws an out-of-memory error naming the status, where tfjs-backend-wasm only prints it', () => {
    const failing = refusingXnnFailures(() => void fs.writeSync(2, LINE));
    expect(() => failing(1, 12, 262144, 2, 1152, 3)).toThrow('out of memory: XNNPACK could not run a product (XNN status for xnn_create_fully_connected_nc_f32 is not successful. Got status 6.');
  });

  it('passes every other write through, and restores fs.writeSync', () => {
    const original = fs.writeSync;
    let ran = 0;
    refusingXnnFailures(() => {
      ran++;
      expect(fs.writeSync(1, '')).toBe(0);
    })(1, 1, 1, 2, 1, 3);
    expect(ran).toBe(1);
    expect(fs.writeSync).toBe(original);
  });
});
