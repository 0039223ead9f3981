#!/usr/bin/env bash
# The GPU check, one script for a machine with a GPU: install, report the adapter (doctor), run the webgpu
# suite on it, then measure a real-size LoRA step and scoring on webgpu and on wasm, on this same machine,
# and print webgpu's tokens/s as a ratio of wasm's. Results (JSON) go to $OUT (default: runs/gpu-check).
#   SHAPE=qwen2.5-0.5b LAYERS=4 SEQ_LEN=512 src/bench/gpu-check.sh
# Needs a Vulkan (Linux, Windows), Metal (macOS) or D3D12 (Windows) driver; doctor says what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-runs/gpu-check}
shape=${SHAPE:-qwen2.5-0.5b}
layers=${LAYERS:-4}
seq_len=${SEQ_LEN:-512}
mkdir -p "$out"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

[ -d node_modules ] || npm ci --no-audit --no-fund
node bin/slm-train.js doctor
node bin/slm-train.js doctor --json > "$out/doctor.json"
SLM_TRAIN_REQUIRE_WEBGPU=1 npx vitest run test/webgpu
for backend in webgpu wasm; do
  node bin/slm-train.js bench --backend "$backend" --shape "$shape" --layers "$layers" --seq-len "$seq_len" --no-torch --json > "$out/bench-$backend.json"
done
node src/bench/gpu-ratio.mjs "$out/bench-webgpu.json" "$out/bench-wasm.json" "$out/doctor.json"
