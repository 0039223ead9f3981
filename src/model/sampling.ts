import type { Rng } from '../util/rng.ts';

export interface SamplingOptions {
  /** 0 means greedy (argmax). */
  temperature: number;
  /** Keep only the k most likely tokens; 0 disables. */
  topK: number;
  /** Keep the smallest set of tokens whose probability reaches p; 1 disables. */
  topP: number;
}

export const GREEDY: SamplingOptions = { temperature: 0, topK: 0, topP: 1 };

export function validateSampling(options: SamplingOptions): void {
  if (!(options.temperature >= 0)) throw new RangeError(`temperature must be >= 0, got ${options.temperature}`);
  if (!Number.isInteger(options.topK) || options.topK < 0) throw new RangeError(`top-k must be an integer >= 0, got ${options.topK}`);
  if (!(options.topP > 0 && options.topP <= 1)) throw new RangeError(`top-p must be in (0, 1], got ${options.topP}`);
}

/** Picks the next token from one position's logits; the filters apply in the order temperature, top-k, top-p. */
export function sampleToken(logits: Float32Array, options: SamplingOptions, rng: Rng): number {
  if (options.temperature === 0) return argmax(logits);
  const candidates = filteredDistribution(logits, options);
  let u = rng.next();
  for (const { id, p } of candidates) {
    u -= p;
    if (u < 0) return id;
  }
  return candidates[candidates.length - 1].id;
}

/** The sampling distribution after temperature, top-k and top-p, sorted by descending probability. */
export function filteredDistribution(logits: Float32Array, options: SamplingOptions): { id: number; p: number }[] {
  const ids = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
  const kept = options.topK > 0 ? ids.slice(0, options.topK) : ids;
  const max = logits[kept[0]];
  const weights = kept.map((id) => Math.exp((logits[id] - max) / options.temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  const result: { id: number; p: number }[] = [];
  let cumulative = 0;
  for (let i = 0; i < kept.length && cumulative < options.topP; i++) {
    const p = weights[i] / total;
    result.push({ id: kept[i], p });
    cumulative += p;
  }
  return result.map(({ id, p }) => ({ id, p: p / cumulative }));
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
