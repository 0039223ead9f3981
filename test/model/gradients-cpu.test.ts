import { initBackend } from '../../src/backend/index.ts';
import { gradientSuite } from './gradients.suite.ts';

await initBackend('cpu');
gradientSuite();
