/**
 * `node --import tsx decoding-worker.ts '<json>'`: the decoding bench (ours and llama.cpp's on the same
 * F32 GGUF) in a process of its own, started with the wasm thread count chosen for decoding, which may
 * differ from the training count of the bench's own process; prints one JSON line.
 */
import { initBackend } from '../backend/index.ts';
import { benchDecodingAgainstLlamaCpp } from './decoding.ts';
import { BENCH_MODEL } from './training.ts';

const options = JSON.parse(process.argv[2]) as { promptTokens: number; newTokens: number };
const backend = await initBackend('wasm', { workload: 'decoding' });
const { ours, llamaCpp } = await benchDecodingAgainstLlamaCpp(BENCH_MODEL, options.promptTokens, options.newTokens, backend.threads);
const ratioToLlamaCpp = 'skipped' in llamaCpp ? null : ours.tokensPerSecond / llamaCpp.tokensPerSecond;
process.stdout.write(`${JSON.stringify({ threads: backend.threads, threadSource: backend.threadSource, ...ours, llamaCpp, ratioToLlamaCpp })}\n`);
process.exit(0);
