/**
 * Examples -> fixed windows of seqLen + 1 tokens, the unit a causal LM batch row is cut from:
 * inputs = window[0..seqLen), targets = window[1..seqLen], mask = lossMask of the target positions.
 * Each example starts with BOS (when there is one) and its first token is never a target. A plain-text
 * stream runs through its windows as in GPT-style pretraining; whole examples packed into one window
 * (prompt/response pairs) are kept apart by `segments`: the model gives each its own positions from 0
 * and a block-diagonal causal mask (as Axolotl's sample packing and TRL's padding-free batches do), so
 * an example has the same loss packed as alone.
 */
/** A tokenized training example: what packing lays into windows. */
export interface TextExample {
  ids: number[];
  lossMask: number[];
  /** The teacher's top-k for predicting each token, [ids.length, k]; -Infinity logprobs where it has none. */
  softLabels?: SoftLabelBlock;
}

export interface SoftLabelBlock {
  k: number;
  ids: Int32Array;
  logprobs: Float32Array;
}

export interface PackedWindows {
  seqLen: number;
  count: number;
  padId: number;
  /** [count, seqLen + 1] token ids. */
  ids: Int32Array;
  /** [count, seqLen + 1]; 1 where the token is a prediction target within its window (never the first). */
  mask: Uint8Array;
  /** The teacher's top-k for each token, [count, seqLen + 1, k], when the examples carry soft labels. */
  softLabels?: SoftLabelBlock;
  /** Per window, the lengths of its examples over the input positions [0, seqLen), when they are packed whole. */
  segments?: number[][];
  /** Windows 2i and 2i + 1 are preference pair i's chosen and rejected completions (see packPairs). */
  pairs?: boolean;
  /** Per window, the reference model's summed log-probability of its targets (preference pairs). */
  referenceLogps?: Float32Array;
}

export interface PackStats {
  examples: number;
  /** Examples longer than seqLen + 1 tokens, cut to their first seqLen + 1. */
  truncated: number;
  /** Examples left without any target after truncation, so not packed. */
  skipped: number;
  windows: number;
  targetTokens: number;
}

export interface Packed {
  windows: PackedWindows;
  stats: PackStats;
}

/**
 * For plain text: all examples as one stream, cut every seqLen tokens into windows of seqLen + 1, so
 * consecutive windows share one token and every token but the stream's first is a target exactly once.
 * The last window is filled with padId and mask 0.
 */
export function packStream(examples: readonly TextExample[], seqLen: number, padId: number): Packed {
  checkSeqLen(seqLen);
  const ids = examples.flatMap((e) => e.ids);
  const mask = examples.flatMap((e) => e.lossMask);
  const count = ids.length > 1 ? Math.ceil((ids.length - 1) / seqLen) : 0;
  const windows = emptyWindows(count, seqLen, padId);
  const width = seqLen + 1;
  for (let w = 0; w < count; w++) {
    const start = w * seqLen;
    const end = Math.min(start + width, ids.length);
    windows.ids.set(ids.slice(start, end), w * width);
    windows.mask.set(mask.slice(start + 1, end), w * width + 1);
  }
  return { windows, stats: stats(examples.length, 0, 0, windows) };
}

/**
 * For prompt/response pairs: whole examples placed greedily in file order into the current window while
 * they fit, a new window when not; the rest of a window is padId with mask 0. An example longer than
 * seqLen + 1 is cut to its first seqLen + 1 tokens.
 */
export function packGreedy(examples: readonly TextExample[], seqLen: number, padId: number): Packed {
  checkSeqLen(seqLen);
  const width = seqLen + 1;
  const rows: TextExample[][] = [];
  let current: TextExample[] = [];
  let fill = 0;
  let truncated = 0;
  let skipped = 0;
  for (const example of examples) {
    const fitted = example.ids.length > width ? truncate(example, width) : example;
    if (fitted !== example) truncated++;
    if (!fitted.lossMask.includes(1)) {
      skipped++;
      continue;
    }
    if (fill + fitted.ids.length > width) {
      rows.push(current);
      current = [];
      fill = 0;
    }
    current.push(fitted);
    fill += fitted.ids.length;
  }
  if (current.length > 0) rows.push(current);
  const windows = emptyWindows(rows.length, seqLen, padId, softLabelWidth(examples));
  windows.segments = rows.map((row) => inputSegments(row, seqLen));
  rows.forEach((row, w) => {
    let offset = w * width;
    for (const example of row) {
      windows.ids.set(example.ids, offset);
      windows.mask.set(example.lossMask, offset);
      if (windows.softLabels && example.softLabels) {
        const { k } = windows.softLabels;
        windows.softLabels.ids.set(example.softLabels.ids, offset * k);
        windows.softLabels.logprobs.set(example.softLabels.logprobs, offset * k);
      }
      offset += example.ids.length;
    }
  });
  return { windows, stats: stats(examples.length, truncated, skipped, windows) };
}

/**
 * For preference pairs: each pair's chosen and rejected examples in windows of their own (2i and 2i + 1),
 * padded, never packed together, since a pair's loss compares their whole log-probabilities. A side longer
 * than seqLen + 1 is cut to its first seqLen + 1 tokens; a pair with a side left without targets is
 * skipped. Stats count pairs.
 */
export function packPairs(pairs: readonly { chosen: TextExample; rejected: TextExample }[], seqLen: number, padId: number): Packed {
  checkSeqLen(seqLen);
  const width = seqLen + 1;
  const kept: TextExample[] = [];
  let truncated = 0;
  let skipped = 0;
  for (const { chosen, rejected } of pairs) {
    if (chosen.ids.length > width || rejected.ids.length > width) truncated++;
    const sides = [chosen, rejected].map((e) => (e.ids.length > width ? truncate(e, width) : e));
    if (sides.some((side) => !side.lossMask.includes(1))) {
      skipped++;
      continue;
    }
    kept.push(...sides);
  }
  const windows = emptyWindows(kept.length, seqLen, padId);
  windows.pairs = true;
  kept.forEach((example, w) => {
    windows.ids.set(example.ids, w * width);
    windows.mask.set(example.lossMask, w * width);
  });
  return { windows, stats: { ...stats(pairs.length, truncated, skipped, windows), windows: kept.length / 2 } };
}

/** The examples' lengths over a window's input positions: the last one may lose its final token (a target only). */
function inputSegments(row: readonly TextExample[], seqLen: number): number[] {
  const lengths: number[] = [];
  let start = 0;
  for (const example of row) {
    const length = Math.min(example.ids.length, seqLen - start);
    if (length > 0) lengths.push(length);
    start += example.ids.length;
  }
  return lengths;
}

/** k when any example has soft labels (they all share the data's k); undefined otherwise. */
function softLabelWidth(examples: readonly TextExample[]): number | undefined {
  return examples.find((e) => e.softLabels)?.softLabels?.k;
}

function truncate(example: TextExample, length: number): TextExample {
  const cut: TextExample = { ids: example.ids.slice(0, length), lossMask: example.lossMask.slice(0, length) };
  if (example.softLabels) {
    const { k, ids, logprobs } = example.softLabels;
    cut.softLabels = { k, ids: ids.slice(0, length * k), logprobs: logprobs.slice(0, length * k) };
  }
  return cut;
}

function emptyWindows(count: number, seqLen: number, padId: number, k?: number): PackedWindows {
  const size = count * (seqLen + 1);
  const windows: PackedWindows = { seqLen, count, padId, ids: new Int32Array(size).fill(padId), mask: new Uint8Array(size) };
  if (k !== undefined) windows.softLabels = { k, ids: new Int32Array(size * k), logprobs: new Float32Array(size * k).fill(-Infinity) };
  return windows;
}

function stats(examples: number, truncated: number, skipped: number, windows: PackedWindows): PackStats {
  const targetTokens = windows.mask.reduce((sum, m) => sum + m, 0);
  return { examples, truncated, skipped, windows: windows.count, targetTokens };
}

function checkSeqLen(seqLen: number): void {
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new RangeError(`seqLen: expected a positive integer, got ${seqLen}`);
}
