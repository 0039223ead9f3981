import { describe } from 'vitest';
import { gradientSuite } from '../model/gradients.suite.ts';
import { webgpuOrSkip } from './webgpu-backend.ts';

if (await webgpuOrSkip()) gradientSuite();
else describe.skip('gradients on webgpu (no adapter)', () => {});
