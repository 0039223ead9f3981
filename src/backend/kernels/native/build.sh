#!/usr/bin/env bash
# Builds rows-product.c into the two modules the wasm backend may need: one importing a shared memory (the
# threaded tfjs build) and one importing a plain memory (1 thread). Needs clang and wasm-ld 14 or newer
# (Debian: apt-get install clang-14 lld-14). The built modules are committed; test/backend/kernels/rows-product.test.ts
# checks that they are what this script makes from the source, where clang is present.
set -euo pipefail
cd "$(dirname "$0")"
clang=${CLANG:-clang-14}
flags=(--target=wasm32 -O3 -msimd128 -fno-builtin -nostdlib -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all)
"$clang" "${flags[@]}" -o rows-product.wasm rows-product.c
"$clang" "${flags[@]}" -matomics -mbulk-memory -Wl,--shared-memory -Wl,--max-memory=4294967296 -o rows-product-shared.wasm rows-product.c
