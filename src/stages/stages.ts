/** A recipe's stages, in the order they run (the CLI's `--only` picks one). */
export const STAGES = ['generate', 'train', 'eval', 'export'] as const;
export type Stage = (typeof STAGES)[number];
