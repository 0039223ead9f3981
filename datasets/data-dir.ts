import { fileURLToPath } from 'node:url';

/** The folder of the committed data files, which the generators beside it write and their tests read. */
export const DATA_DIR = fileURLToPath(new URL('./data/', import.meta.url));
