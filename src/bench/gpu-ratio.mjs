// Prints webgpu's real-size throughput against wasm's on the same machine, from `slm-train bench --json`
// outputs, with the adapter doctor found; and the same as one JSON line.
import { readFileSync } from 'node:fs';

const [webgpuFile, wasmFile, doctorFile] = process.argv.slice(2);
const read = (file) => JSON.parse(readFileSync(file, 'utf8'));
const [webgpu, wasm, doctor] = [read(webgpuFile), read(wasmFile), read(doctorFile)];
const adapter = doctor.webgpu?.adapter;
const ratio = (a, b) => (a && b ? a / b : null);
const result = {
  model: webgpu.model,
  adapter: adapter ? `${adapter.vendor} ${adapter.device} (${adapter.type})` : null,
  lora: { webgpu: webgpu.lora?.tokensPerSecond, wasm: wasm.lora?.tokensPerSecond, ratio: ratio(webgpu.lora?.tokensPerSecond, wasm.lora?.tokensPerSecond) },
  scoring: { webgpu: webgpu.scoring?.tokensPerSecond, wasm: wasm.scoring?.tokensPerSecond, ratio: ratio(webgpu.scoring?.tokensPerSecond, wasm.scoring?.tokensPerSecond) },
};
const fmt = (x) => (x == null ? 'n/a' : x.toFixed(2));
console.log(`${result.model} on ${result.adapter ?? 'no adapter'}`);
console.log(`LoRA step: webgpu ${fmt(result.lora.webgpu)} tok/s, wasm ${fmt(result.lora.wasm)} tok/s: ${fmt(result.lora.ratio)}x`);
console.log(`scoring:   webgpu ${fmt(result.scoring.webgpu)} tok/s, wasm ${fmt(result.scoring.wasm)} tok/s: ${fmt(result.scoring.ratio)}x`);
console.log(JSON.stringify(result));
