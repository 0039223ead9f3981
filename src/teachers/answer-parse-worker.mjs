/**
 * Parses teacher answers off the main thread (see answer-parser.ts). Messages in: {id, body: ArrayBuffer,
 * logprobsAt}; out: {id, ...parseAnswer's result}, the packed arrays transferred.
 */
import { parentPort } from 'node:worker_threads';
import { packedBuffers, parseAnswer } from './answer-packing.mjs';

parentPort.on('message', ({ id, body, logprobsAt }) => {
  const result = parseAnswer(new Uint8Array(body), logprobsAt);
  parentPort.postMessage({ id, ...result }, result.packed ? packedBuffers(result.packed) : []);
});
