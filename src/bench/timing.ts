/** Timing helpers the benches share. */

/**
 * Reads up to `limit` tokens of a decoding stream (`onToken` after each): how many came, when the first did
 * (the prompt's prefill ends there), and the tokens per second after it.
 */
export async function timeDecoding(
  tokens: AsyncIterable<unknown>,
  limit = Infinity,
  onToken?: () => void,
): Promise<{ produced: number; firstTokenAt: number; tokensPerSecond: number }> {
  let [produced, firstTokenAt] = [0, 0];
  for await (const _ of tokens) {
    if (produced === 0) firstTokenAt = performance.now();
    produced++;
    onToken?.();
    if (produced >= limit) break;
  }
  return { produced, firstTokenAt, tokensPerSecond: (produced - 1) / ((performance.now() - firstTokenAt) / 1000) };
}

/** The item whose key is the median (the upper one of an even count). */
export function medianBy<T>(items: T[], key: (item: T) => number): T {
  return [...items].sort((a, b) => key(a) - key(b))[Math.floor(items.length / 2)];
}
