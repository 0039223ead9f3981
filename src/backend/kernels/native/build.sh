#!/usr/bin/env bash
# Builds each native kernel (rows-product.c, batch-product.c) into the two modules the wasm backend may
# need: one importing a shared memory (the threaded tfjs build) and one importing a plain memory (1 thread).
# Needs clang and wasm-ld 14 or newer (Debian: apt-get install clang-14 lld-14). The built modules are
# committed; test/backend/kernels/native-build.test.ts checks that they are what this script makes from
# the sources, where clang is present.
set -euo pipefail
cd "$(dirname "$0")"
clang=${CLANG:-clang-14}
flags=(--target=wasm32 -O3 -msimd128 -fno-builtin -nostdlib -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all)
for kernel in rows-product batch-product; do
  "$clang" "${flags[@]}" -o "$kernel.wasm" "$kernel.c"
  "$clang" "${flags[@]}" -matomics -mbulk-memory -Wl,--shared-memory -Wl,--max-memory=4294967296 -o "$kernel-shared.wasm" "$kernel.c"
done
