import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectGpu } from '../../src/backend/gpu.ts';

/** A fake filesystem root with the driver's /proc entry and /dev node, and a bin dir for nvidia-smi. */
function fakeMachine(options: { proc?: boolean; dev?: boolean; smi?: string }): { root: string; path: string } {
  const root = mkdtempSync(join(tmpdir(), 'slm-gpu-'));
  const bin = join(root, 'bin');
  mkdirSync(bin);
  if (options.proc) {
    const gpu = join(root, 'proc/driver/nvidia/gpus/0000:01:00.0');
    mkdirSync(gpu, { recursive: true });
    writeFileSync(join(gpu, 'information'), 'Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 42\n');
  }
  if (options.dev) {
    mkdirSync(join(root, 'dev'));
    writeFileSync(join(root, 'dev/nvidia0'), '');
  }
  if (options.smi !== undefined) {
    writeFileSync(join(bin, 'nvidia-smi'), `#!/bin/sh\n${options.smi}\n`);
    chmodSync(join(bin, 'nvidia-smi'), 0o755);
  }
  return { root, path: bin };
}

describe('detectGpu', () => {
  it('finds nothing on a machine without an NVIDIA driver, and says where it looked', async () => {
    const gpu = await detectGpu(fakeMachine({}));

    expect(gpu).toEqual({
      visible: false,
      devices: [],
      checks: [
        { source: 'nvidia-smi', found: false, detail: 'not on PATH' },
        { source: '/proc/driver/nvidia/gpus', found: false, detail: 'absent' },
        { source: '/dev/nvidia0', found: false, detail: 'absent' },
      ],
    });
  });

  it('lists the GPUs nvidia-smi reports, next to the driver evidence', async () => {
    const machine = fakeMachine({ proc: true, dev: true, smi: 'echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1b2c)"' });

    const gpu = await detectGpu(machine);

    expect(gpu.visible).toBe(true);
    expect(gpu.devices).toEqual(['GPU 0: NVIDIA H100 80GB HBM3']);
    expect(gpu.checks.map((c) => [c.source, c.found])).toEqual([
      ['nvidia-smi', true],
      ['/proc/driver/nvidia/gpus', true],
      ['/dev/nvidia0', true],
    ]);
    expect(gpu.checks[0].detail).toBe(`${join(machine.path, 'nvidia-smi')} -L lists 1 GPU(s)`);
  });

  it('falls back to the driver model name when nvidia-smi fails', async () => {
    const smi = 'echo "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver" >&2; exit 9';

    const gpu = await detectGpu(fakeMachine({ proc: true, smi }));

    expect(gpu.visible).toBe(true);
    expect(gpu.devices).toEqual(['NVIDIA H100 80GB HBM3']);
    expect(gpu.checks[0]).toMatchObject({ source: 'nvidia-smi', found: false });
    expect(gpu.checks[0].detail).toMatch(/-L failed: /);
  });
});
