import { useBackend } from '../helpers/backend.ts';
import { gradientSuite } from './gradients.suite.ts';

await useBackend('wasm');
gradientSuite();
