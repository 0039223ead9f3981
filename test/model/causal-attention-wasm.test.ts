import { initBackend } from '../../src/backend/index.ts';
import { causalAttentionSuite } from './causal-attention.suite.ts';

await initBackend('wasm');
causalAttentionSuite();
