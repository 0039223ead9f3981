'use strict';
// Entry point of the pthread workers of tfjs-backend-wasm's threaded build under Node (see wasm-threads.ts).
//
// tfjs hands emscripten a worker script as a `blob:` URL, which Node's worker_threads refuses, and then
// posts the main script (the module factory) to each worker as a Blob, which the emscripten worker
// cannot import under Node either. This file runs the unmodified emscripten worker code from the
// package and swaps that Blob for the package's own copy of the same factory, a real file.
const { parentPort } = require('node:worker_threads');
const vm = require('node:vm');

const PACKAGE = '@tensorflow/tfjs-backend-wasm/wasm-out/';
const { wasmWorkerContents } = require(`${PACKAGE}tfjs-backend-wasm-threaded-simd.worker.js`);
const mainScript = require.resolve(`${PACKAGE}tfjs-backend-wasm-threaded-simd.js`);

const addListener = parentPort.on.bind(parentPort);
parentPort.on = (event, listener) => {
  if (event !== 'message') return addListener(event, listener);
  return addListener(event, (data) => {
    if (data && data.cmd === 'load') data.urlOrBlob = mainScript;
    listener(data);
  });
};

// The worker code keeps `\n` escapes inside its string literals, which the template literal it ships
// in has turned into real newlines (tfjs escapes them the same way before making its Blob).
const source = wasmWorkerContents.replace(/\n/g, '\\n');
const runWorker = vm.runInThisContext(`(function (require, __filename) {${source}\n})`, {
  filename: `${PACKAGE}tfjs-backend-wasm-threaded-simd.worker.js`,
});
runWorker(require, __filename);
