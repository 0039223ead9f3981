import { describe } from 'vitest';
import { causalAttentionSuite } from '../model/causal-attention.suite.ts';
import { webgpuOrSkip } from './webgpu-backend.ts';

if (await webgpuOrSkip()) causalAttentionSuite();
else describe.skip('causal attention on webgpu (no adapter)', () => {});
