/**
 * Parsing of a teacher's JSON answer, written to run in the answer-parse worker (plain JavaScript, so the
 * worker needs no TypeScript loader). A labeled answer runs to hundreds of kilobytes, most of it the
 * generated tokens' logprobs: thousands of small objects that would cost as much to clone back to the main
 * thread as to parse. So the list of them is packed into flat arrays, which cross threads without copying,
 * and the rest of the answer (text, finish reason, usage) is cloned as it is.
 */
import { isAscii } from 'node:buffer';

/**
 * Parses `body` (UTF-8 JSON) and, when `logprobsAt` is given, packs the list of wire logprobs found at that
 * path ({token, logprob, bytes?, top_logprobs?} per generated token, as OpenAI chat and Ollama send them)
 * and leaves null in its place. A path that leads nowhere (a field missing, null) packs nothing: the
 * teacher reports what is missing. Returns `{ problem }` for a body that is not JSON or a list that is not
 * one of wire logprobs, naming the offending entry.
 */
export function parseAnswer(body, logprobsAt) {
  let json;
  try {
    json = JSON.parse(decodeUtf8(body));
  } catch (error) {
    return { problem: `malformed JSON (${error.message})` };
  }
  if (!logprobsAt) return { json };
  const parent = parentOf(json, logprobsAt);
  const key = logprobsAt.at(-1);
  const list = parent?.[key];
  if (list === undefined || list === null) return { json };
  try {
    const packed = packWireLogprobs(list, pathName(logprobsAt));
    parent[key] = null;
    return { json, packed };
  } catch (error) {
    if (error instanceof WireShapeError) return { problem: error.message };
    throw error;
  }
}

/** The typed arrays of a packed list, to transfer rather than copy. */
export function packedBuffers(packed) {
  return [packed.entries.buffer, packed.logprobs.buffer, packed.topCounts.buffer];
}

/** Node's UTF-8 decoding is slow for large strings; ASCII (most JSON answers) decodes as Latin-1, byte for byte. */
function decodeUtf8(body) {
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8');
}

/** The object holding the last key of `path` in `json`, or undefined where the path leads nowhere. */
export function parentOf(json, path) {
  let value = json;
  for (const key of path.slice(0, -1)) {
    if (value === null || typeof value !== 'object') return undefined;
    value = value[key];
  }
  return value !== null && typeof value === 'object' ? value : undefined;
}

class WireShapeError extends Error {}

/**
 * Entries in order: each generated token, then its alternatives. Each distinct (token, bytes) pair is
 * stored once in `tokens`/`bytes` and referenced by index; tokens that are parts of one UTF-8 character
 * share a text ("\uFFFD") and differ in their bytes, so the bytes are part of the identity.
 */
function packWireLogprobs(list, where) {
  if (!Array.isArray(list)) throw new WireShapeError(`\`${where}\` is not a list of token logprobs`);
  let count = list.length;
  for (const entry of list) if (Array.isArray(entry?.top_logprobs)) count += entry.top_logprobs.length;
  const interned = new Interned();
  const entries = new Int32Array(count);
  const logprobs = new Float64Array(count);
  const topCounts = new Int32Array(list.length);
  let next = 0;
  const put = (entry, name) => {
    if (entry === null || typeof entry !== 'object') throw new WireShapeError(`\`${name()}\` is not a token logprob object`);
    if (typeof entry.token !== 'string') throw new WireShapeError(`\`${name()}.token\` is not a string`);
    if (typeof entry.logprob !== 'number') throw new WireShapeError(`\`${name()}.logprob\` is not a number`);
    const index = interned.indexOf(entry.token, entry.bytes ?? null);
    if (index < 0) throw new WireShapeError(`\`${name()}.bytes\` is not a list of bytes`);
    entries[next] = index;
    logprobs[next++] = entry.logprob;
  };
  for (let t = 0; t < list.length; t++) {
    const entry = list[t];
    put(entry, () => `${where}[${t}]`);
    const top = entry.top_logprobs ?? [];
    if (!Array.isArray(top)) throw new WireShapeError(`\`${where}[${t}].top_logprobs\` is not a list`);
    topCounts[t] = top.length;
    for (let j = 0; j < top.length; j++) put(top[j], () => `${where}[${t}].top_logprobs[${j}]`);
  }
  return { tokens: interned.tokens, bytes: interned.bytes, entries, logprobs, topCounts };
}

/** The distinct (token, bytes) pairs of a list; bytes are checked once, when a pair is first seen. */
class Interned {
  tokens = [];
  bytes = [];
  /** token text -> index of its first (token, bytes) pair; later pairs with other bytes go by the joined key. */
  byToken = new Map();
  byTokenAndBytes = new Map();

  /** The pair's index; -1 when `bytes` is neither null nor a list of bytes. */
  indexOf(token, bytes) {
    const first = this.byToken.get(token);
    if (first === undefined) return this.add(token, bytes, this.byToken, token);
    if (sameBytes(this.bytes[first], bytes)) return first;
    const key = `${token}\u0000${bytes}`;
    return this.byTokenAndBytes.get(key) ?? this.add(token, bytes, this.byTokenAndBytes, key);
  }

  add(token, bytes, map, key) {
    if (bytes !== null && !isByteList(bytes)) return -1;
    const index = this.tokens.length;
    this.tokens.push(token);
    this.bytes.push(bytes);
    map.set(key, index);
    return index;
  }
}

function sameBytes(a, b) {
  if (a === null || b === null) return a === b;
  if (!Array.isArray(b) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isByteList(value) {
  return Array.isArray(value) && value.every((byte) => Number.isInteger(byte) && byte >= 0 && byte <= 255);
}

function pathName(path) {
  return path.map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${key}`)).join('');
}
