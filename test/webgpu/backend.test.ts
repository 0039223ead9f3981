import { describe, expect, it } from 'vitest';
import { webgpuCapacity } from '../../src/backend/capacity.ts';
import { doctorReport, initBackend } from '../../src/backend/index.ts';
import type { WebgpuAdapter } from '../../src/backend/webgpu.ts';
import { shapeConfig } from '../../src/bench/model-shapes.ts';
import { resolveResidency } from '../../src/model-files/load.ts';
import { webgpuOrSkip } from './webgpu-backend.ts';

const available = await webgpuOrSkip();

function adapter(type: WebgpuAdapter['type'], binding = 128 * 2 ** 20): WebgpuAdapter {
  return { vendor: 'v', architecture: 'a', device: 'd', description: 'x', type, limits: { maxStorageBufferBindingSize: binding, maxBufferSize: 4 * 2 ** 30 } };
}

describe('webgpu capacity and residency', () => {
  it('plans a software adapter in host memory, a GPU at the stated or assumed size, never a tensor past the largest binding', () => {
    expect(webgpuCapacity(adapter('software'))).toMatchObject({ sharesHostMemory: true, maxTensorBytes: 128 * 2 ** 20 });
    expect(webgpuCapacity(adapter('discrete'), {})).toMatchObject({ bytes: 8 * 2 ** 30, sharesHostMemory: false, source: expect.stringMatching(/8 GiB assumed \(set SLM_TRAIN_GPU_MEMORY_GIB\)/) });
    expect(webgpuCapacity(adapter('discrete'), { SLM_TRAIN_GPU_MEMORY_GIB: '24' }).bytes).toBe(24 * 2 ** 30);
    // Qwen2.5-0.5B fits 24 GiB many times over, but its 544 MB embedding is past a 128 MiB binding.
    const qwen = shapeConfig('qwen2.5-0.5b');
    expect(resolveResidency(qwen, 'auto', webgpuCapacity(adapter('discrete'), { SLM_TRAIN_GPU_MEMORY_GIB: '24' }))).toBe('streamed');
    expect(resolveResidency(qwen, 'auto', webgpuCapacity(adapter('discrete', 2 ** 31), { SLM_TRAIN_GPU_MEMORY_GIB: '24' }))).toBe('resident');
  });
});

describe.skipIf(!available)('the webgpu backend here', () => {
  it('is reported by doctor with its adapter, and a software adapter is taken only by name', async () => {
    const report = await doctorReport();
    const entry = report.backends.find((b) => b.backend === 'webgpu')!;
    expect(entry.status).toBe('loaded');
    expect(report.webgpu.adapter).toMatchObject({ limits: { maxStorageBufferBindingSize: expect.any(Number) } });
    if (report.webgpu.adapter!.type === 'software') {
      expect(entry.reason).toMatch(/software adapter: used only with --backend webgpu, not by auto/);
      expect((await initBackend('auto')).attempts.find((a) => a.backend === 'webgpu')).toMatchObject({ ok: false, reason: expect.stringMatching(/only a software adapter/) });
    }
    expect((await initBackend('webgpu')).backend).toBe('webgpu');
  });
});
