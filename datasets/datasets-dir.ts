import { fileURLToPath } from 'node:url';

/** The folder of the committed data files, which the generators under it write and their tests read. */
export const DATASETS_DIR = fileURLToPath(new URL('.', import.meta.url));
